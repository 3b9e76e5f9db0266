import type { Difference, SampleRatio } from '../../model/ab-stats.ts';
import type {
  ExperimentResults,
  SeriesPoint,
  VariantResult,
  VersusControl,
} from '../../services/experiment-results.ts';
import { experimentResults } from '../../services/experiment-results.ts';
import type { Experiment, ExperimentChange, Variant } from '../../services/experiments.ts';
import type { ListExperiment } from '../../services/recommendations.ts';
import { builder } from '../builder.ts';
import { RulesInputRef } from './rules.ts';

export const ExperimentAssignmentRef = builder.objectRef<ListExperiment>('ExperimentAssignment').implement({
  description: 'The experiment variant that served a list; its recommendationId attributes later events to it.',
  fields: (t) => ({
    id: t.exposeID('id'),
    variant: t.exposeString('variant'),
    phase: t.exposeInt('phase', { description: 'The experiment’s phase when the list was served.' }),
  }),
});

const VariantRef = builder.objectRef<Variant>('ExperimentVariant').implement({
  fields: (t) => ({
    name: t.exposeString('name'),
    weight: t.exposeFloat('weight'),
    modelVersion: t.exposeInt('modelVersion', { nullable: true }),
    strategy: t.exposeString('strategy', { nullable: true }),
    placement: t.exposeID('placement', { nullable: true }),
    rules: t.field({ type: 'JSON', nullable: true, resolve: (v) => v.rules }),
  }),
});

const ChangeKindRef = builder.enumType('ExperimentChangeKind', {
  values: {
    STARTED: {},
    CHANGED: { description: 'Placement, traffic share or variants changed: a new phase.' },
    STOPPED: {},
  } as const,
});

const ChangeRef = builder.objectRef<ExperimentChange>('ExperimentChange').implement({
  fields: (t) => ({
    kind: t.field({ type: ChangeKindRef, resolve: (c) => c.kind }),
    phase: t.exposeInt('phase'),
    trafficShare: t.exposeFloat('trafficShare'),
    variants: t.field({ type: [VariantRef], resolve: (c) => c.variants }),
    at: t.field({ type: 'DateTime', resolve: (c) => c.at }),
  }),
});

const ExperimentRef = builder.objectRef<Experiment>('Experiment').implement({
  description: 'An A/B test of what lists serve. The first variant is the control the others are compared with.',
  fields: (t) => ({
    id: t.exposeID('id'),
    placement: t.exposeID('placement', { nullable: true, description: 'Null: every list.' }),
    trafficShare: t.exposeFloat('trafficShare'),
    variants: t.field({ type: [VariantRef], resolve: (e) => e.variants }),
    phase: t.exposeInt('phase'),
    running: t.boolean({ resolve: (e) => e.stoppedAt === null }),
    startedAt: t.field({ type: 'DateTime', resolve: (e) => e.startedAt }),
    phaseStartedAt: t.field({ type: 'DateTime', resolve: (e) => e.phaseStartedAt }),
    stoppedAt: t.field({ type: 'DateTime', nullable: true, resolve: (e) => e.stoppedAt }),
    history: t.field({
      type: [ChangeRef],
      description: 'Every start, change and stop, oldest first.',
      resolve: (e, _args, { services }) => services.experiments.history(e.id),
    }),
  }),
});

const DifferenceRef = builder.objectRef<Difference>('Difference').implement({
  description: 'A variant minus the control, with its 95 % confidence interval and two-sided p-value.',
  fields: (t) => ({
    estimate: t.exposeFloat('estimate'),
    low: t.exposeFloat('low'),
    high: t.exposeFloat('high'),
    pValue: t.exposeFloat('pValue'),
    significant: t.exposeBoolean('significant', { description: 'The interval excludes zero (p < 0.05).' }),
  }),
});

const VersusControlRef = builder.objectRef<VersusControl>('VersusControl').implement({
  description: 'Rates: two-proportion z-test per shopper; revenue per shopper: Welch’s t-test. Null without data.',
  fields: (t) => ({
    clickRate: t.field({ type: DifferenceRef, nullable: true, resolve: (v) => v.clickRate }),
    addToCartRate: t.field({ type: DifferenceRef, nullable: true, resolve: (v) => v.addToCartRate }),
    purchaseRate: t.field({ type: DifferenceRef, nullable: true, resolve: (v) => v.purchaseRate }),
    revenuePerShopper: t.field({ type: DifferenceRef, nullable: true, resolve: (v) => v.revenuePerShopper }),
  }),
});

const VariantResultRef = builder.objectRef<VariantResult>('VariantResult').implement({
  fields: (t) => ({
    name: t.exposeString('name'),
    weight: t.exposeFloat('weight'),
    control: t.exposeBoolean('control'),
    shoppers: t.exposeInt('shoppers', { description: 'Distinct shoppers exposed (served a list, or sending its id).' }),
    lists: t.exposeInt('lists', { description: 'Lists served (each push counts as one).' }),
    clicks: t.exposeInt('clicks'),
    clickThroughRate: t.exposeFloat('clickThroughRate', { description: 'Clicks per list (descriptive).' }),
    clickRate: t.exposeFloat('clickRate', { description: 'Share of shoppers who clicked.' }),
    addToCartRate: t.exposeFloat('addToCartRate', { description: 'Share of shoppers with an attributed add-to-cart.' }),
    purchaseRate: t.exposeFloat('purchaseRate', { description: 'Share of shoppers with an attributed purchase.' }),
    revenue: t.exposeFloat('revenue'),
    revenuePerShopper: t.exposeFloat('revenuePerShopper'),
    expectedShare: t.exposeFloat('expectedShare'),
    observedShare: t.exposeFloat('observedShare'),
    versusControl: t.field({ type: VersusControlRef, nullable: true, resolve: (v) => v.versusControl }),
  }),
});

const SampleRatioRef = builder.objectRef<SampleRatio>('SampleRatioCheck').implement({
  description: 'Chi-square of the exposed shoppers per variant against the weights; flagged when p < 0.001.',
  fields: (t) => ({
    chiSquare: t.exposeFloat('chiSquare'),
    degreesOfFreedom: t.exposeInt('degreesOfFreedom'),
    pValue: t.exposeFloat('pValue'),
    flagged: t.exposeBoolean('flagged'),
  }),
});

const SeriesPointRef = builder.objectRef<SeriesPoint>('ConversionPoint').implement({
  fields: (t) => ({
    at: t.field({ type: 'DateTime', resolve: (p) => p.at }),
    shoppers: t.exposeInt('shoppers'),
    buyers: t.exposeInt('buyers'),
    rate: t.exposeFloat('rate'),
    low: t.exposeFloat('low'),
    high: t.exposeFloat('high'),
  }),
});

const SeriesRef = builder.objectRef<ExperimentResults['series'][number]>('ConversionSeries').implement({
  description: 'A variant’s cumulative purchase conversion at the end of each time bucket, with its 95 % interval.',
  fields: (t) => ({
    variant: t.exposeString('variant'),
    points: t.field({ type: [SeriesPointRef], resolve: (s) => s.points }),
  }),
});

const ResultsRef = builder.objectRef<ExperimentResults>('ExperimentResults').implement({
  fields: (t) => ({
    experiment: t.field({ type: ExperimentRef, resolve: (r) => r.experiment }),
    phase: t.exposeInt('phase'),
    from: t.field({ type: 'DateTime', resolve: (r) => r.from }),
    to: t.field({ type: 'DateTime', nullable: true, resolve: (r) => r.to }),
    attributionWindowHours: t.exposeInt('attributionWindowHours'),
    variants: t.field({ type: [VariantResultRef], resolve: (r) => r.variants }),
    srm: t.field({ type: SampleRatioRef, resolve: (r) => r.srm }),
    series: t.field({ type: [SeriesRef], resolve: (r) => r.series }),
  }),
});

const VariantInputRef = builder.inputType('VariantInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: '1–32 letters, digits, dashes or underscores.' }),
    weight: t.float({ required: true, description: 'Positive; shares are weight / sum of weights.' }),
    modelVersion: t.int({ description: 'Rank with this READY model version instead of the current one.' }),
    strategy: t.string({ description: '`default` or `trending` (trending then catalogue: a non-personal control).' }),
    placement: t.id({ description: 'This placement’s rules instead of the request’s placement’s.' }),
    rules: t.field({ type: RulesInputRef, description: 'These rules instead of the request’s placement’s.' }),
  }),
});

const ExperimentInputRef = builder.inputType('ExperimentInput', {
  fields: (t) => ({
    id: t.id({ required: true, description: '1–40 letters, digits, dashes or underscores.' }),
    placement: t.id({ description: 'The placement whose lists it covers; omitted: every list.' }),
    trafficShare: t.float({
      defaultValue: 1,
      description: 'Share of shoppers in the experiment, above 0 and at most 1.',
    }),
    variants: t.field({ type: [VariantInputRef], required: true, description: '2–10; the first is the control.' }),
  }),
});

builder.queryFields((t) => ({
  experiments: t.field({
    type: [ExperimentRef],
    description: 'Admin: every experiment, newest first.',
    authScopes: { admin: true },
    resolve: (_root, _args, { services }) => services.experiments.list(),
  }),
  experiment: t.field({
    type: ExperimentRef,
    nullable: true,
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, { services }) => services.experiments.get(String(id)),
  }),
  experimentResults: t.field({
    type: ResultsRef,
    description:
      'Admin: per-variant shoppers, lists, clicks and conversions of one phase (the current one by default), the differences against the control with 95 % intervals, and the sample-ratio check.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }), phase: t.arg.int() },
    resolve: (_root, { id, phase }, { db, services }) => experimentResults(db, services.experiments, String(id), phase),
  }),
}));

builder.mutationFields((t) => ({
  upsertExperiment: t.field({
    type: ExperimentRef,
    description:
      'Admin: starts an experiment or changes a running one (a change starts a new phase); refused while another runs on the same lists.',
    authScopes: { admin: true },
    args: { input: t.arg({ type: ExperimentInputRef, required: true }) },
    resolve: (_root, { input }, { services }) =>
      services.experiments.upsert({
        id: String(input.id),
        placement: input.placement == null ? null : String(input.placement),
        trafficShare: input.trafficShare,
        variants: input.variants.map((variant) => ({
          ...variant,
          placement: variant.placement == null ? null : String(variant.placement),
        })),
      }),
  }),
  stopExperiment: t.field({
    type: ExperimentRef,
    description: 'Admin: stops an experiment; its lists serve as without it, its results stay.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, { services }) => services.experiments.stopExperiment(String(id)),
  }),
  rebuildExperimentAttribution: t.int({
    description:
      'Admin: re-derives an experiment’s attributed events from the event log (a repair; reads the whole log). Returns the rows added.',
    authScopes: { admin: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, { services }) => services.experiments.rebuildAttribution(String(id)),
  }),
}));
