import type { TrainingJobState, TrainingStatus } from '../../services/training-jobs.ts';
import { builder } from '../builder.ts';

const ModelStatusRef = builder.enumType('ModelStatus', { values: ['TRAINING', 'READY', 'FAILED'] as const });

/** One trial of a training's parameter search, as stored in `ModelVersion.trials`. */
interface ModelTrial {
  family: string;
  params: Record<string, unknown>;
  rung: number;
  score: number;
  seconds: number;
}

/** The stored trials, keeping only well-formed entries (the column is JSON, written by training). */
function trialsOf(stored: unknown): ModelTrial[] {
  if (!Array.isArray(stored)) return [];
  const trials: ModelTrial[] = [];
  for (const entry of stored as unknown[]) {
    if (typeof entry !== 'object' || entry === null) continue;
    const { family, params, rung, score, seconds } = entry as Record<string, unknown>;
    if (typeof family !== 'string' || typeof rung !== 'number' || typeof score !== 'number') continue;
    if (typeof seconds !== 'number' || typeof params !== 'object' || params === null) continue;
    trials.push({ family, params: params as Record<string, unknown>, rung, score, seconds });
  }
  return trials;
}

const ModelTrialRef = builder.objectRef<ModelTrial>('ModelTrial').implement({
  description: "One evaluation of a training's parameter search, on a validation split cut from its training part.",
  fields: (t) => ({
    family: t.exposeString('family', { description: 'als, ease, itemknn or blend.' }),
    params: t.field({ type: 'JSON', resolve: (trial) => trial.params }),
    rung: t.exposeInt('rung', {
      description: 'Fidelity of the fit (successive halving): 0 is the cheapest, the highest is a full fit.',
    }),
    score: t.exposeFloat('score', { description: 'Validation NDCG@10.' }),
    seconds: t.exposeFloat('seconds'),
  }),
});

export const ModelVersionRef = builder.prismaObject('ModelVersion', {
  description: 'A trained model. Immutable once READY; the READY version activated last serves.',
  fields: (t) => ({
    id: t.exposeInt('id'),
    algorithm: t.exposeString('algorithm'),
    status: t.field({ type: ModelStatusRef, resolve: (v) => v.status }),
    params: t.expose('params', { type: 'JSON' }),
    dataFrom: t.expose('dataFrom', { type: 'DateTime', nullable: true }),
    dataTo: t.expose('dataTo', { type: 'DateTime', nullable: true }),
    events: t.exposeInt('events'),
    users: t.exposeInt('users'),
    items: t.exposeInt('items'),
    metrics: t.expose('metrics', {
      type: 'JSON',
      nullable: true,
      description: 'Offline metrics on a temporal hold-out.',
    }),
    timings: t.expose('timings', { type: 'JSON', nullable: true }),
    trials: t.field({
      type: [ModelTrialRef],
      description:
        "The training's parameter search: every trial's family, params, fidelity rung, validation NDCG@10 and seconds (empty for versions trained before tuning moved into training).",
      select: { trials: true },
      resolve: (v) => trialsOf(v.trials),
    }),
    error: t.exposeString('error', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    activatedAt: t.expose('activatedAt', { type: 'DateTime', nullable: true }),
    pinnedAt: t.expose('pinnedAt', {
      type: 'DateTime',
      nullable: true,
      description: 'When a rollback pinned this version (it keeps serving until unpinned or beaten); null otherwise.',
    }),
    current: t.boolean({
      description: 'Whether this gateway serves this version now.',
      resolve: (v, _args, { services }) => services.models.currentVersionId === v.id,
    }),
  }),
});

const TrainingStatusRef = builder.enumType('TrainingStatus', {
  description: 'Where a training job stands.',
  values: {
    QUEUED: { description: 'Waiting for a trainer.' },
    RUNNING: { description: 'A trainer is training it.' },
    TRAINED: {
      description: 'A version was stored; it serves unless a pinned version keeps serving (`version.current`).',
    },
    SKIPPED: { description: 'No interactions to learn from yet; nothing was stored.' },
    FAILED: { description: 'The training failed; `message` says why.' },
  } as const satisfies Record<TrainingStatus, { description: string }>,
});

const RetrainResultRef = builder.objectRef<TrainingJobState>('RetrainResult').implement({
  description: 'A training job: where it stands and, once trained, its version.',
  fields: (t) => ({
    jobId: t.exposeID('jobId'),
    status: t.field({ type: TrainingStatusRef, resolve: (result) => result.status }),
    message: t.exposeString('message', { nullable: true, description: 'Why it was SKIPPED or FAILED.' }),
    version: t.prismaField({
      type: 'ModelVersion',
      nullable: true,
      description: 'The stored version, once TRAINED.',
      resolve: (_query, result) => result.version,
    }),
  }),
});

builder.queryFields((t) => ({
  modelVersions: t.prismaField({
    type: ['ModelVersion'],
    description: 'Admin: trained model versions, newest first.',
    authScopes: { admin: true },
    args: { first: t.arg.int({ defaultValue: 20, required: true }) },
    resolve: (query, _root, { first }, { db }) =>
      db.modelVersion.findMany({ ...query, orderBy: { id: 'desc' }, take: Math.min(Math.max(first, 1), 100) }),
  }),
  trainingJob: t.field({
    type: RetrainResultRef,
    description: 'Admin: where a training job stands (the jobId retrainModel returned).',
    args: { jobId: t.arg.id({ required: true }) },
    authScopes: { admin: true },
    resolve: (_root, { jobId }, context) => context.services.training.status(String(jobId)),
  }),
}));

builder.mutationFields((t) => ({
  retrainModel: t.field({
    authScopes: { admin: true },
    type: RetrainResultRef,
    description:
      'Admin: trains a new model version from the event log; with wait, answers once it ended (and serves, when it became current) or, after waitSeconds, with the job still QUEUED or RUNNING.',
    args: {
      wait: t.arg.boolean({ defaultValue: false, required: true }),
      waitSeconds: t.arg.int({ defaultValue: 120, required: true, description: 'With wait: 1 to 3600.' }),
      params: t.arg({
        type: 'JSON',
        description: 'ALS overrides for this training: factors, lambda, alpha, iterations, cgSteps.',
      }),
    },
    resolve: (_root, { wait, waitSeconds, params }, context) =>
      context.services.training.retrain({ wait, waitSeconds, params }),
  }),
  rollbackModel: t.prismaField({
    authScopes: { admin: true },
    type: 'ModelVersion',
    description:
      'Admin: makes an earlier READY version serve again, on every gateway, and pins it: later trainings are stored but it keeps serving until unpinModel or a version that beats its hold-out NDCG@10 by MODEL_PIN_MARGIN.',
    args: { versionId: t.arg.int({ required: true }) },
    resolve: (_query, _root, { versionId }, context) => context.services.models.rollback(versionId),
  }),
  unpinModel: t.prismaField({
    authScopes: { admin: true },
    type: 'ModelVersion',
    nullable: true,
    description: 'Admin: ends a rollback pin (the next training serves as usual); returns the version that was pinned.',
    resolve: (_query, _root, _args, context) => context.services.training.unpin(),
  }),
}));
