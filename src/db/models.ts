import type { ModelArtifact, ModelVersion, Prisma } from '../generated/prisma/client.ts';
import { decodeNeighbourTable, encodeNeighbourTable, type NeighbourTable } from '../model/neighbour-table.ts';
import type { Db } from './client.ts';

/** Vectors of a trained model, as the training produced them. */
export interface ModelVectors {
  factors: number;
  itemIds: string[];
  itemFactors: Float32Array;
  userIds: string[];
  userFactors: Float32Array;
  /** AnnIndex.serialize() over the item vectors. */
  itemIndex: Buffer;
  /** An item-to-item model's neighbour table (rows in `itemIds` order); absent for vector models. */
  neighbours?: NeighbourTable;
}

export function toBytes(vectors: Float32Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(
    vectors.buffer.slice(vectors.byteOffset, vectors.byteOffset + vectors.byteLength),
  ) as Uint8Array<ArrayBuffer>;
}

export function toFloat32(bytes: Uint8Array): Float32Array {
  // Copy into a buffer of its own: the bytes need not be 4-byte aligned, and a Buffer (from Redis) may be a
  // view into a shared pool, where Buffer#slice would not copy.
  return new Float32Array(new Uint8Array(bytes).buffer);
}

export function decodeArtifact(artifact: ModelArtifact): ModelVectors {
  return {
    factors: artifact.factors,
    itemIds: artifact.itemIds,
    itemFactors: toFloat32(artifact.itemFactors),
    userIds: artifact.userIds,
    userFactors: toFloat32(artifact.userFactors),
    itemIndex: Buffer.from(artifact.itemIndex),
    ...(artifact.neighbours ? { neighbours: decodeNeighbourTable(artifact.neighbours) } : {}),
  };
}

export async function createModelVersion(
  db: Db,
  algorithm: string,
  params: Prisma.InputJsonValue,
): Promise<ModelVersion> {
  return db.modelVersion.create({ data: { algorithm, params } });
}

/**
 * How long storing a version's artifact may take. Prisma's 5 s default is too short for a large shop: at
 * 100,000 items and shoppers the vectors and index are tens of MB, and the commit took 9 s and failed (the
 * version stayed TRAINING) on a 2-core machine while the trainer was also busy.
 */
const ARTIFACT_STORE_TIMEOUT_MS = 120_000;

/**
 * Stores the artifact and marks the version READY, all at once; with `activate` it also becomes current
 * (and ends any pin: it beat the pinned version).
 */
export async function completeModelVersion(
  db: Db,
  id: number,
  summary: Pick<
    Prisma.ModelVersionUpdateInput,
    'dataFrom' | 'dataTo' | 'events' | 'users' | 'items' | 'metrics' | 'timings' | 'algorithm' | 'params' | 'trials'
  >,
  vectors: ModelVectors,
  activate: boolean,
): Promise<ModelVersion> {
  const now = new Date();
  return db.$transaction(
    async (tx) => {
      const version = await tx.modelVersion.update({
        where: { id },
        data: { ...summary, status: 'READY', finishedAt: now, activatedAt: activate ? now : null },
      });
      await tx.modelArtifact.create({
        data: {
          versionId: id,
          factors: vectors.factors,
          itemIds: vectors.itemIds,
          itemFactors: toBytes(vectors.itemFactors),
          userIds: vectors.userIds,
          userFactors: toBytes(vectors.userFactors),
          itemIndex: new Uint8Array(vectors.itemIndex) as Uint8Array<ArrayBuffer>,
          neighbours: vectors.neighbours ? encodeNeighbourTable(vectors.neighbours) : null,
        },
      });
      if (activate) await tx.modelVersion.updateMany({ where: { pinnedAt: { not: null } }, data: { pinnedAt: null } });
      return version;
    },
    { timeout: ARTIFACT_STORE_TIMEOUT_MS },
  );
}

/** Makes a READY version current (it beat any pinned one, so the pin ends), as `completeModelVersion` does. */
export async function activateModelVersion(db: Db, id: number): Promise<ModelVersion> {
  const [, version] = await db.$transaction([
    db.modelVersion.updateMany({ where: { pinnedAt: { not: null } }, data: { pinnedAt: null } }),
    db.modelVersion.update({ where: { id }, data: { activatedAt: new Date() } }),
  ]);
  return version;
}

export async function failModelVersion(db: Db, id: number, error: string): Promise<void> {
  await db.modelVersion.update({ where: { id }, data: { status: 'FAILED', error, finishedAt: new Date() } });
}

/** The READY version trained last (what a new training warm-starts its search from). */
export async function findLatestReadyModelVersion(db: Db): Promise<ModelVersion | null> {
  return db.modelVersion.findFirst({ where: { status: 'READY' }, orderBy: { id: 'desc' } });
}

/** The version serving now: the READY one activated last. */
export async function findCurrentModelVersion(db: Db): Promise<ModelVersion | null> {
  return db.modelVersion.findFirst({
    where: { status: 'READY', activatedAt: { not: null } },
    orderBy: { activatedAt: 'desc' },
  });
}

export async function loadModelVectors(db: Db, id: number): Promise<ModelVectors | undefined> {
  const artifact = await db.modelArtifact.findUnique({ where: { versionId: id } });
  return artifact ? decodeArtifact(artifact) : undefined;
}

/**
 * Makes a READY version current again and pins it (a rollback): trainings that follow store their versions
 * but leave this one serving unless they beat it (see `findPinnedModelVersion`). Returns it, or undefined
 * when there is no such version.
 */
export async function activateAndPinModelVersion(db: Db, id: number): Promise<ModelVersion | undefined> {
  return db.$transaction(async (tx) => {
    const now = new Date();
    const { count } = await tx.modelVersion.updateMany({
      where: { id, status: 'READY' },
      data: { activatedAt: now, pinnedAt: now },
    });
    if (!count) return undefined;
    await tx.modelVersion.updateMany({ where: { id: { not: id }, pinnedAt: { not: null } }, data: { pinnedAt: null } });
    return (await tx.modelVersion.findUnique({ where: { id } })) ?? undefined;
  });
}

/** The version an operator pinned by a rollback, if any. */
export async function findPinnedModelVersion(db: Db): Promise<ModelVersion | null> {
  return db.modelVersion.findFirst({ where: { pinnedAt: { not: null } } });
}

/** Ends the pin, so the next training's version serves as usual; returns the version that was pinned. */
export async function unpinModelVersion(db: Db): Promise<ModelVersion | null> {
  const pinned = await findPinnedModelVersion(db);
  if (!pinned) return null;
  return db.modelVersion.update({ where: { id: pinned.id }, data: { pinnedAt: null } });
}
