import { EventType } from '../../generated/prisma/enums.ts';
import { assertMayActAs } from '../../services/access.ts';
import { type EventInput, type TrackResult, TrackStatus } from '../../services/events.ts';
import { builder } from '../builder.ts';

const EventTypeRef = builder.enumType(EventType, { name: 'EventType', description: 'What the shopper did.' });
const TrackStatusRef = builder.enumType(TrackStatus, {
  name: 'TrackStatus',
  description:
    'ACCEPTED: stored now. DUPLICATE: this eventId was stored before with the same payload (a retry); nothing ' +
    'changed. CONFLICT: this eventId was stored before with a different payload; the first is kept, this one is not stored.',
});

const EventInputRef = builder.inputType('EventInput', {
  fields: (t) => ({
    eventId: t.id({ description: 'Your id for the event; sending one makes retries safe. Generated when omitted.' }),
    userId: t.id({ required: true }),
    type: t.field({ type: EventTypeRef, required: true }),
    itemId: t.id({ description: 'Required for item events. An id the catalogue does not know yet is accepted.' }),
    sessionId: t.id(),
    occurredAt: t.string({
      description:
        'ISO-8601 date-time (a real calendar date, not before MIN_OCCURRED_AT); at most a day ahead. Defaults to the time of receipt.',
    }),
    quantity: t.int({ description: 'Defaults to 1.' }),
    value: t.float({ description: 'Monetary value of the interaction (e.g. line total of a purchase).' }),
    context: t.field({
      type: 'JSON',
      description: 'Free context (page, device, …): at most 8 KiB as JSON, 10 levels deep, no NUL or lone surrogates.',
    }),
    recommendationId: t.id({ description: 'The recommendation list this interaction came from.' }),
    consent: t.boolean({
      description:
        "The shopper's consent to personalisation as of this event (as setConsent before it; false removes what was " +
        'built of them). Omitted: as they last said, or CONSENT_DEFAULT. Send it when it changes: each carrying event costs a write.',
    }),
  }),
});

const TrackResultRef = builder.objectRef<TrackResult>('TrackResult').implement({
  fields: (t) => ({
    eventId: t.exposeID('eventId'),
    status: t.field({ type: TrackStatusRef, resolve: (result) => result.status }),
  }),
});

function toEventInput(input: typeof EventInputRef.$inferInput): EventInput {
  const optionalId = (id: string | number | null | undefined) => (id == null ? null : String(id));
  return {
    ...input,
    eventId: optionalId(input.eventId),
    userId: String(input.userId),
    itemId: optionalId(input.itemId),
    sessionId: optionalId(input.sessionId),
    recommendationId: optionalId(input.recommendationId),
  };
}

builder.mutationFields((t) => ({
  trackEvent: t.field({
    type: TrackResultRef,
    description: 'Records one interaction. Answers once Postgres has stored it.',
    args: { input: t.arg({ type: EventInputRef, required: true }) },
    resolve: (_root, { input }, { services, caller }) => {
      assertMayActAs(caller, String(input.userId));
      return services.events.track(toEventInput(input));
    },
  }),
  trackEvents: t.field({
    type: [TrackResultRef],
    nullable: { list: false, items: true },
    description:
      'Records a batch (at most MAX_BATCH_SIZE). Valid events are stored; an invalid one is null in the list, ' +
      'with an error whose path ends at its index.',
    args: { inputs: t.arg({ type: [EventInputRef], required: true }) },
    resolve: async (_root, { inputs }, { services, caller }) => {
      // The whole batch is refused when one event is for a shopper the caller may not act as.
      for (const input of inputs) assertMayActAs(caller, String(input.userId));
      // graphql-js reports an Error placed in a list as that entry's error, at its index.
      return (await services.events.trackMany(inputs.map(toEventInput))) as TrackResult[];
    },
  }),
}));
