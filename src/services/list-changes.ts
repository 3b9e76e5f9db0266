import type { Item } from '../generated/prisma/client.ts';

/**
 * What made the gateway push a list (PRIVACY: the shopper was erased or withdrew consent; FEATURES: a rebuild
 * of the online features ended, so lists that fell back read them whole again; EXPERIMENT: an experiment
 * covering the list started, changed phase or stopped).
 */
export type ListTrigger =
  | 'SUBSCRIBED'
  | 'EVENT'
  | 'CATALOG'
  | 'MODEL'
  | 'PLACEMENT'
  | 'PRIVACY'
  | 'FEATURES'
  | 'EXPERIMENT';

/** How a pushed list differs from the one pushed before it on the same subscription. */
export interface ListChange {
  trigger: ListTrigger;
  /** Item ids on this list that were not on the previous one, in list order. */
  entered: string[];
  /** Item ids of the previous list that are gone, in their old order. */
  left: string[];
}

/** The parts of a list a subscriber sees change. */
export interface ComparableList {
  readonly items: readonly { readonly item: Pick<Item, 'id' | 'updatedAt'> }[];
  readonly strategy: string;
  readonly modelVersion: number | null;
  /** The experiment variant that served it: a new one must reach the subscriber (its recommendationId attributes). */
  readonly experiment?: { readonly id: string; readonly variant: string; readonly phase: number } | null;
}

/**
 * Compares two lists as a subscriber sees them: the items, their order, their catalogue data (a new price
 * or stock shows as a newer `updatedAt`), which model ranked them and under which experiment variant. Scores alone do not count: a
 * storefront does not show them, so a push that only moves scores would be noise. Returns null when nothing
 * visible changed; `undefined` as the previous list means there was none.
 */
export function diffLists(
  previousList: ComparableList | undefined,
  nextList: ComparableList,
  trigger: ListTrigger,
): ListChange | null {
  const previous = previousList?.items ?? [];
  const next = nextList.items;
  const same =
    previousList !== undefined &&
    previousList.strategy === nextList.strategy &&
    previousList.modelVersion === nextList.modelVersion &&
    sameExperiment(previousList.experiment, nextList.experiment) &&
    previous.length === next.length &&
    previous.every(
      ({ item }, index) =>
        item.id === next[index]?.item.id && item.updatedAt.getTime() === next[index].item.updatedAt.getTime(),
    );
  if (same) return null;
  const before = new Set(previous.map(({ item }) => item.id));
  const after = new Set(next.map(({ item }) => item.id));
  return {
    trigger,
    entered: [...after].filter((id) => !before.has(id)),
    left: [...before].filter((id) => !after.has(id)),
  };
}

function sameExperiment(a: ComparableList['experiment'], b: ComparableList['experiment']): boolean {
  return (a ?? null) === (b ?? null) || (!!a && !!b && a.id === b.id && a.variant === b.variant && a.phase === b.phase);
}
