import { describe, expect, it } from 'vitest';
import {
  type AnnIndex,
  BruteForceIndex,
  type BuildInput,
  HnswIndex,
  type SearchHit,
  type VersionedHits,
  VersionedIndex,
} from '../../../src/ann/index.ts';
import { clusteredQueries, clusteredVectors } from './clustered-vectors.ts';

const implementations = [
  { name: 'HnswIndex', build: (input: BuildInput) => HnswIndex.build(input), deserialize: HnswIndex.deserialize },
  {
    name: 'BruteForceIndex',
    build: (input: BuildInput) => BruteForceIndex.build(input),
    deserialize: BruteForceIndex.deserialize,
  },
];

const DIM = 8;

/** A model version: same catalogue ids, vectors from a different seed, so the versions rank differently. */
function modelVersion(seed: number): BuildInput {
  const data = clusteredVectors(500, DIM, 10, seed);
  return { space: 'ip', dim: DIM, ids: data.ids, vectors: data.vectors };
}

const queries = clusteredQueries(clusteredVectors(500, DIM, 10, 1), 5, DIM, 9);

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function answersOf(index: AnnIndex): SearchHit[][] {
  return queries.map((q) => index.search(q, 10));
}

describe.each(implementations)('VersionedIndex over $name', (impl) => {
  it('when a new version loads while queries run then every query succeeds on exactly one of the versions', async () => {
    const v1 = impl.build(modelVersion(1));
    const v2Bytes = await impl.build(modelVersion(2)).serialize();
    const expected: Record<string, SearchHit[][]> = {
      v1: answersOf(v1),
      v2: answersOf(await impl.deserialize(v2Bytes)),
    };
    expect(expected.v1).not.toEqual(expected.v2);
    const registry = new VersionedIndex();
    await registry.load('v1', () => v1);
    let swapped = false;

    const swap = registry
      .load('v2', () => impl.deserialize(v2Bytes))
      .then(() => {
        swapped = true;
      });
    const streams = [0, 1, 2].map(async (stream) => {
      const answers: { query: number; answer: VersionedHits }[] = [];
      // Keep querying until the swap has landed, then a few turns more; bounded so a hung load fails the test.
      for (let turn = 0, after = 0; after < 5 && turn < 100_000; turn++) {
        const query = (stream + turn) % queries.length;
        answers.push({ query, answer: registry.search(queries[query] as Float32Array, 10) });
        if (swapped) after++;
        await nextTurn();
      }
      return answers;
    });
    const answered = (await Promise.all(streams)).flat();
    await swap;

    const versionsSeen = new Set(answered.map(({ answer }) => answer.version));
    expect(versionsSeen).toEqual(new Set(['v1', 'v2']));
    for (const { query, answer } of answered) expect(answer.hits).toEqual(expected[answer.version]?.[query]);
    expect(registry.current?.version).toBe('v2');
  });

  it('when rolled back then the previous version answers again, and the newer one can be re-activated', async () => {
    const registry = new VersionedIndex();
    const v1 = impl.build(modelVersion(1));
    const v2 = impl.build(modelVersion(2));
    await registry.load('v1', () => v1);
    await registry.load('v2', () => v2);

    const back = registry.rollback();

    expect(back.version).toBe('v1');
    expect(registry.search(queries[0] as Float32Array, 10).hits).toEqual(answersOf(v1)[0]);
    expect(() => registry.rollback()).toThrow(/no earlier index version/);
    expect(registry.activate('v2').index).toBe(v2);
  });

  it('when more versions load than it keeps then the oldest is dropped and must be reloaded to roll back', async () => {
    const registry = new VersionedIndex({ keep: 2 });
    await registry.load('v1', () => impl.build(modelVersion(1)));
    await registry.load('v2', () => impl.build(modelVersion(2)));
    await registry.load('v3', () => impl.build(modelVersion(3)));

    expect(registry.versions()).toEqual(['v2', 'v3']);
    expect(registry.rollback().version).toBe('v2');
    expect(() => registry.rollback()).toThrow();
    await registry.load('v1', () => impl.build(modelVersion(1)));
    expect(registry.current?.version).toBe('v1');
  });

  it('when a load fails then the current version keeps answering', async () => {
    const registry = new VersionedIndex();
    await registry.load('v1', () => impl.build(modelVersion(1)));

    await expect(registry.load('v2', () => impl.deserialize(Buffer.from('garbage')))).rejects.toThrow();

    expect(registry.current?.version).toBe('v1');
    expect(registry.search(queries[0] as Float32Array, 3).hits).toHaveLength(3);
  });

  it('when an older load finishes after a newer one then the newer version stays current', async () => {
    const registry = new VersionedIndex();
    let finishSlow: (index: AnnIndex) => void = () => {};
    const slow = registry.load('old', () => new Promise<AnnIndex>((resolve) => (finishSlow = resolve)));
    await registry.load('new', () => impl.build(modelVersion(2)));

    finishSlow(impl.build(modelVersion(1)));
    await slow;

    expect(registry.current?.version).toBe('new');
    expect(registry.versions()).toEqual(['new', 'old']);
  });

  it('when nothing is loaded yet then search says so', () => {
    expect(() => new VersionedIndex().search([1, 2, 3, 4, 5, 6, 7, 8], 1)).toThrow(/no index version loaded/);
  });
});
