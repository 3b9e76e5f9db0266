import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeNeighbourTable } from '../../src/model/neighbour-table.ts';
import { eventually, type RunningGateway, startGateway } from '../helpers/gateway.ts';
import { createTestConfig, tasteGroupPurchases, uniqueId } from '../helpers/test-env.ts';

interface Trial {
  family: string;
  params: Record<string, unknown>;
  rung: number;
  score: number;
  seconds: number;
}
interface Version {
  id: number;
  algorithm: string;
  params: { chosen: string; families: Record<string, Record<string, unknown>>; lambda: number };
  metrics: Record<string, unknown>;
  trials: Trial[];
}
const VERSION_FIELDS = 'id algorithm params metrics trials { family params rung score seconds }';

describe('model selection in training (trials stored and exposed on modelVersions)', () => {
  let gateway: RunningGateway;
  const aItems = Array.from({ length: 8 }, (_, i) => uniqueId(`a${i}`));
  const bItems = Array.from({ length: 8 }, (_, i) => uniqueId(`b${i}`));

  beforeAll(async () => {
    // A small budget: each family gets a few trials on the validation split of this shop's events.
    gateway = await startGateway(
      await createTestConfig({
        TRAIN_THREADS: '2',
        TUNE_BUDGET_SECONDS: '3',
        TUNE_SEARCH: 'random',
        TRAIN_MODEL: 'auto',
      }),
    );
    await gateway.graphql(`mutation($items: [ItemInput!]!) { upsertItems(items: $items) { upserted } }`, {
      items: [...aItems, ...bItems].map((id) => ({ id, name: id })),
    });
    const inputs = tasteGroupPurchases(11, [
      { label: 'sel-a', items: aItems, shoppers: 80 },
      { label: 'sel-b', items: bItems, shoppers: 80 },
    ]);
    for (let start = 0; start < inputs.length; start += 500) {
      await gateway.graphql(`mutation($inputs: [EventInput!]!) { trackEvents(inputs: $inputs) { status } }`, {
        inputs: inputs.slice(start, start + 500),
      });
    }
    await eventually(async () => (await gateway.app.db.event.count({ where: { processedAt: null } })) === 0, 20_000);
  }, 60_000);
  afterAll(async () => {
    await gateway.stop();
  });

  it('when a version is trained then its trials, the chosen family and its hold-out metrics are on modelVersions', async () => {
    const trained = await gateway.graphql<{ retrainModel: { version: { id: number } } }>(
      `mutation { retrainModel(wait: true) { version { id } } }`,
    );
    const listed = await gateway.graphql<{ modelVersions: Version[] }>(`{ modelVersions { ${VERSION_FIELDS} } }`);
    const version = listed.data?.modelVersions.find((v) => v.id === trained.data?.retrainModel.version.id);

    expect(version?.algorithm).toBe(version?.params.chosen);
    expect(['als', 'ease', 'itemknn', 'blend']).toContain(version?.algorithm);
    expect(new Set(version?.trials.map((t) => t.family))).toEqual(new Set(['als', 'ease', 'itemknn', 'blend']));
    expect(version?.trials.length).toBeGreaterThan(4);
    for (const trial of version?.trials ?? []) {
      expect(trial.score).toBeGreaterThanOrEqual(0);
      expect(trial.seconds).toBeGreaterThanOrEqual(0);
    }
    expect(version?.metrics).toMatchObject({
      'ndcg@10': expect.any(Number),
      coverage: expect.any(Number),
      popularShare: expect.any(Number),
      'validationNdcg@10': expect.any(Number),
    });
    // Serving's fold-in reads the ALS params at the top of params, whatever family won.
    expect(version?.params.lambda).toEqual(expect.any(Number));
  }, 120_000);

  it('when an item-to-item family wins then the version stores its neighbour table beside the ALS vectors', async () => {
    const latest = await gateway.app.db.modelVersion.findFirst({ where: { status: 'READY' }, orderBy: { id: 'desc' } });
    const artifact = await gateway.app.db.modelArtifact.findUnique({ where: { versionId: latest?.id ?? -1 } });

    expect(artifact?.itemFactors.byteLength).toBeGreaterThan(0);
    if (latest?.algorithm === 'als') {
      expect(artifact?.neighbours).toBeNull();
    } else {
      const table = decodeNeighbourTable(artifact?.neighbours as Uint8Array);
      expect(table.items).toBe(artifact?.itemIds.length);
      expect(table.indices.length).toBeGreaterThan(0);
    }
  });

  it('when the next version trains then its search starts from the previous best params', async () => {
    const before = await gateway.app.db.modelVersion.findFirst({ where: { status: 'READY' }, orderBy: { id: 'desc' } });
    const previous = (before?.params as Version['params'] | undefined)?.families.itemknn;

    const trained = await gateway.graphql<{ retrainModel: { version: { id: number } } }>(
      `mutation { retrainModel(wait: true) { version { id } } }`,
    );
    const next = await gateway.app.db.modelVersion.findUnique({
      where: { id: trained.data?.retrainModel.version.id ?? -1 },
    });
    const firstItemknn = ((next?.trials ?? []) as unknown as Trial[]).find((t) => t.family === 'itemknn');

    expect(previous).toBeDefined();
    expect(firstItemknn?.params).toEqual(expect.objectContaining(stripWeighting(previous ?? {})));
  }, 120_000);
});

/** The search's own keys of stored params (the stored ones also carry the weighting). */
function stripWeighting(params: Record<string, unknown>): Record<string, unknown> {
  const { typeWeights: _t, halfLifeDays: _h, ...rest } = params;
  return rest;
}
