import type { ItemStore } from './item-store.ts';
import type { AnnSpace, ItemMeta } from './types.ts';

/** What both indexes answer straight from their ItemStore (ids, vectors, metadata), written once. */
export abstract class StoreBackedIndex {
  protected constructor(protected readonly store: ItemStore) {}

  get space(): AnnSpace {
    return this.store.space;
  }

  get dim(): number {
    return this.store.dim;
  }

  get size(): number {
    return this.store.live;
  }

  get capacity(): number {
    return this.store.capacity;
  }

  has(id: string): boolean {
    return this.store.isLive(id);
  }

  setMeta(id: string, meta: ItemMeta): boolean {
    const label = this.store.labels.get(id);
    if (label === undefined) return false;
    this.store.setMeta(label, meta);
    return true;
  }

  getMeta(id: string): Readonly<ItemMeta> | undefined {
    const label = this.store.labels.get(id);
    return label === undefined ? undefined : this.store.meta[label];
  }
}
