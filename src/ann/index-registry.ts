import type { AnnIndex, SearchFilter, SearchHit } from './types.ts';

/** One loaded model version's index. */
export interface IndexVersion {
  readonly version: string;
  readonly index: AnnIndex;
}

/** A search answer, tagged with the version that produced it. */
export interface VersionedHits {
  version: string;
  hits: SearchHit[];
}

export interface VersionedIndexOptions {
  /**
   * How many versions to keep in memory, the current one included (default 2: current plus one to roll back
   * to). Older ones are dropped when a new version is loaded and must be reloaded to roll back to them.
   */
  keep?: number;
}

/**
 * Serves one model version's index at a time and swaps in the next without stopping queries.
 *
 * `load` awaits the caller's loader (reading the files, deserializing, or a build in a worker) while the current
 * version keeps answering, then swaps with one assignment. Index methods are synchronous, so a search always runs
 * entirely on one version: the one `current` pointed at when it started. Callers that must make several calls
 * against the same version take `current` once and use its `index`.
 */
export class VersionedIndex {
  private readonly keep: number;
  private active: IndexVersion | undefined;
  /** Held versions, oldest first; the active one is among them. */
  private readonly held: IndexVersion[] = [];
  /** Versions in the order they were activated, for `rollback`. */
  private readonly history: string[] = [];
  private loadsStarted = 0;
  private newestActivatedLoad = 0;

  constructor(options: VersionedIndexOptions = {}) {
    this.keep = Math.max(1, options.keep ?? 2);
  }

  /** The version answering queries now, or undefined before the first load. */
  get current(): IndexVersion | undefined {
    return this.active;
  }

  /** Versions held in memory, oldest first. */
  versions(): string[] {
    return this.held.map((entry) => entry.version);
  }

  /** Searches the current version. Throws when no version is loaded yet. */
  search(query: ArrayLike<number>, k: number, filter?: SearchFilter): VersionedHits {
    const active = this.active;
    if (!active) throw new Error('no index version loaded');
    return { version: active.version, hits: active.index.search(query, k, filter) };
  }

  /**
   * Loads a version in the background and makes it current when ready. If a load started later has already
   * been activated, this one is only held (a slow old load never overrides a newer version). A failed load
   * leaves the current version in place and rejects.
   */
  async load(version: string, loader: () => AnnIndex | Promise<AnnIndex>): Promise<IndexVersion> {
    const ticket = ++this.loadsStarted;
    const entry: IndexVersion = { version, index: await loader() };
    this.hold(entry);
    if (ticket > this.newestActivatedLoad) {
      this.newestActivatedLoad = ticket;
      this.activate(version);
    } else {
      this.trim();
    }
    return entry;
  }

  /** Makes a held version current. Throws when it is not held (reload it with `load`). */
  activate(version: string): IndexVersion {
    const entry = this.held.find((held) => held.version === version);
    if (!entry) throw new Error(`index version ${version} is not loaded`);
    this.active = entry;
    this.history.push(version);
    this.trim();
    return entry;
  }

  /**
   * Makes the previously active version current again, if it is still held, and returns it. Throws when there
   * is none to go back to; `load` it again instead.
   */
  rollback(): IndexVersion {
    const current = this.active?.version;
    for (let i = this.history.length - 1; i >= 0; i--) {
      const version = this.history[i];
      if (version === undefined || version === current) continue;
      const entry = this.held.find((held) => held.version === version);
      if (!entry) break;
      this.history.splice(i);
      this.active = entry;
      this.history.push(version);
      return entry;
    }
    throw new Error('no earlier index version held to roll back to');
  }

  private hold(entry: IndexVersion): void {
    const existing = this.held.findIndex((held) => held.version === entry.version);
    if (existing >= 0) this.held.splice(existing, 1);
    this.held.push(entry);
  }

  /** Drops the oldest versions beyond `keep`, never the active one. */
  private trim(): void {
    while (this.held.length > this.keep) {
      const victim = this.held.findIndex((held) => held !== this.active);
      if (victim < 0) return;
      this.held.splice(victim, 1);
    }
  }
}
