import { describe, expect, it } from 'vitest';
import { contentNeighbours, contentTokens, contentVector, fitContentMapping } from '../../../src/model/content.ts';
import { fitContentMappingOffThread } from '../../../src/model/content-thread.ts';

const trained = [
  { name: 'Pink cherry blossom lantern', description: 'paper lantern', category: 'lights' },
  { name: 'White cherry blossom lantern', description: 'paper lantern', category: 'lights' },
  { name: 'Wooden star ornament', description: 'oak christmas decoration', category: 'decor' },
  { name: 'Wooden heart ornament', description: 'oak decoration', category: 'decor', attributes: { wood: 'oak' } },
];
// Two factors: the lanterns point one way, the ornaments the other.
const itemFactors = Float32Array.of(1, 0, 0.8, 0.1, 0, 1, 0.1, 0.9);

describe('content mapping', () => {
  const mapping = fitContentMapping(trained, itemFactors, 2);

  it('when an item is tokenised then name words weigh double and category and scalar attributes are tokens', () => {
    const tokens = contentTokens({
      name: 'Oak Star',
      description: 'a star of oak',
      category: 'Decor',
      attributes: { size: 3, deep: { no: 1 } },
    });

    expect(tokens).toEqual(['oak', 'oak', 'star', 'star', 'star', 'oak', 'category:decor', 'size=3']);
  });

  it('when a cold item reads like the lanterns then its neighbours are the lanterns and its vector points their way', () => {
    const cold = { name: 'Cherry blossom garland', description: 'pink paper garland', category: 'lights' };

    const neighbours = contentNeighbours(mapping, cold);
    const vector = contentVector(mapping, cold);

    expect(neighbours.map((n) => n.row)).toEqual([0, 1]);
    expect(vector?.[0]).toBeGreaterThan(vector?.[1] ?? 1);
  });

  it('when a cold item shares no word with any trained item then it gets no vector', () => {
    expect(contentVector(mapping, { name: 'Quantum flux capacitor' })).toBeUndefined();
  });

  it('when a trained item is excluded then it is not its own neighbour', () => {
    const neighbours = contentNeighbours(mapping, trained[2] as (typeof trained)[number], 2);

    expect(neighbours.map((n) => n.row)).toEqual([3]);
  });

  it('when the mapping is fitted on a thread of its own then it maps a cold item exactly as the in-process fit does', async () => {
    let fellBack: string | undefined;
    const threaded = await fitContentMappingOffThread(trained, itemFactors, 2, {
      minItems: 0,
      onFallback: (reason) => {
        fellBack = reason;
      },
    });
    const cold = { name: 'Oak star garland', description: 'wooden decoration', category: 'decor' };

    expect(fellBack).toBeUndefined();
    expect(threaded.itemFactors).toBe(itemFactors);
    expect(threaded.idf).toEqual(mapping.idf);
    expect(threaded.postingsItems).toEqual(mapping.postingsItems);
    expect(contentNeighbours(threaded, cold)).toEqual(contentNeighbours(mapping, cold));
    expect(contentVector(threaded, cold)).toEqual(contentVector(mapping, cold));
  });
});
