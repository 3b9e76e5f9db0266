import { DomainError, ErrorCode } from '../../errors.ts';
import { builder } from '../builder.ts';
import type { Context } from '../context.ts';

function requireAdmin(context: Context): void {
  if (!context.isAdmin) {
    throw new DomainError(ErrorCode.FORBIDDEN, 'admin operations need "Authorization: Bearer <ADMIN_TOKEN>"');
  }
}

const ModelStatusRef = builder.enumType('ModelStatus', { values: ['TRAINING', 'READY', 'FAILED'] as const });

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
    error: t.exposeString('error', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    activatedAt: t.expose('activatedAt', { type: 'DateTime', nullable: true }),
    current: t.boolean({
      description: 'Whether this gateway serves this version now.',
      resolve: (v, _args, { services }) => services.models.currentVersionId === v.id,
    }),
  }),
});

const RetrainResultRef = builder.objectRef<{ jobId: string; version: unknown }>('RetrainResult').implement({
  fields: (t) => ({
    jobId: t.exposeID('jobId'),
    version: t.prismaField({
      type: 'ModelVersion',
      nullable: true,
      description: 'The new version, when the call waited for it.',
      resolve: (_query, result) => result.version as never,
    }),
  }),
});

builder.queryFields((t) => ({
  modelVersions: t.prismaField({
    type: ['ModelVersion'],
    description: 'Trained model versions, newest first.',
    args: { first: t.arg.int({ defaultValue: 20, required: true }) },
    resolve: (query, _root, { first }, { db }) =>
      db.modelVersion.findMany({ ...query, orderBy: { id: 'desc' }, take: Math.min(Math.max(first, 1), 100) }),
  }),
}));

builder.mutationFields((t) => ({
  retrainModel: t.field({
    type: RetrainResultRef,
    description: 'Admin: trains a new model version from the event log; with wait, answers once it serves.',
    args: {
      wait: t.arg.boolean({ defaultValue: false, required: true }),
      params: t.arg({
        type: 'JSON',
        description: 'ALS overrides for this training: factors, lambda, alpha, iterations, cgSteps.',
      }),
    },
    resolve: (_root, { wait, params }, context) => {
      requireAdmin(context);
      return context.services.training.retrain({ wait, params });
    },
  }),
  rollbackModel: t.prismaField({
    type: 'ModelVersion',
    description: 'Admin: makes an earlier READY version serve again, on every gateway.',
    args: { versionId: t.arg.int({ required: true }) },
    resolve: (_query, _root, { versionId }, context) => {
      requireAdmin(context);
      return context.services.models.rollback(versionId);
    },
  }),
}));
