import { randomUUID } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';

/** Published by the feature worker after it applied an event: the shopper's lists may have changed. */
export interface UserChanged {
  userId: string;
  /** The event that caused the change. */
  eventId: string;
  /** When the gateway received that event (ISO-8601), to measure freshness end to end. */
  receivedAt: string;
  /** When the worker had applied it and announced the change (ISO-8601): splits that time at the queue. */
  processedAt: string;
}

/**
 * Published by whichever gateway changed the catalogue, so every replica refreshes its cache. `origin` is
 * the publishing `PubSub`'s `instanceId`: the publisher applied the change already and skips its own echo.
 */
export interface CatalogChanged {
  itemIds: string[];
  /** `instanceId` of the publisher; absent on messages from replicas that predate it. */
  origin?: string;
}

/** Published when a model version becomes current (after training, or on a rollback); `origin` as above. */
export interface ModelActivated {
  versionId: number;
  origin?: string;
}

/** Published by the feature worker when it derived vectors for items the model version was not trained on. */
export interface ItemVectorsAdded {
  versionId: number;
  itemIds: string[];
}

/** Published by the gateway that created, changed or deleted a placement; `origin` as above. */
export interface PlacementChanged {
  placementId: string;
  origin?: string;
}

/** Published by the gateway that started, changed or stopped an experiment; `origin` as above. */
export interface ExperimentChanged {
  experimentId: string;
  origin?: string;
}

/**
 * Published when a shopper's personal data was removed (erased, or consent withdrawn): every gateway drops what
 * it holds of them in memory (their rows of the loaded models' user vectors) and recomputes their open lists.
 */
export interface ShopperForgotten {
  userId: string;
}

type Listener = (message: string) => void;

/**
 * Typed topics over Redis pub/sub, shared by every gateway replica and worker. One subscriber connection per
 * process carries all channels; a channel is subscribed while at least one local listener wants it.
 */
export class PubSub {
  readonly #publisher: Redis;
  readonly #subscriber: Redis;
  readonly #prefix: string;
  readonly #channels = new Map<string, { listeners: Set<Listener>; subscribed: Promise<unknown> }>();
  /**
   * Names this instance (one per gateway or worker process role) on the announcements it publishes, so a
   * listener can tell its own echo from another replica's change.
   */
  readonly instanceId = randomUUID();

  constructor(options: { publisher: Redis; subscriber: Redis; prefix: string }) {
    this.#publisher = options.publisher;
    this.#subscriber = options.subscriber;
    this.#prefix = `${options.prefix}:ps`;
    this.#subscriber.on('message', (channel: string, message: string) => {
      for (const listener of this.#channels.get(channel)?.listeners ?? []) listener(message);
    });
  }

  #userChannel(userId: string): string {
    return `${this.#prefix}:user:${userId}`;
  }

  get #catalogChannel(): string {
    return `${this.#prefix}:catalog`;
  }

  /** Publishes at once, or queues the message on `pipeline` (sent in order with its other commands). */
  async publishUserChanged(change: UserChanged, pipeline?: ChainableCommander): Promise<void> {
    if (pipeline) pipeline.publish(this.#userChannel(change.userId), JSON.stringify(change));
    else await this.#publisher.publish(this.#userChannel(change.userId), JSON.stringify(change));
  }

  onUserChanged(userId: string, listener: (change: UserChanged) => void): Promise<() => Promise<void>> {
    return this.#listen(this.#userChannel(userId), (message) => listener(JSON.parse(message) as UserChanged));
  }

  async publishCatalogChanged(change: Omit<CatalogChanged, 'origin'>): Promise<void> {
    await this.#publisher.publish(this.#catalogChannel, JSON.stringify({ ...change, origin: this.instanceId }));
  }

  onCatalogChanged(listener: (change: CatalogChanged) => void): Promise<() => Promise<void>> {
    return this.#listen(this.#catalogChannel, (message) => listener(JSON.parse(message) as CatalogChanged));
  }

  async publishModelActivated(change: Omit<ModelActivated, 'origin'>): Promise<void> {
    await this.#publisher.publish(`${this.#prefix}:model`, JSON.stringify({ ...change, origin: this.instanceId }));
  }

  onModelActivated(listener: (change: ModelActivated) => void): Promise<() => Promise<void>> {
    return this.#listen(`${this.#prefix}:model`, (message) => listener(JSON.parse(message) as ModelActivated));
  }

  async publishItemVectorsAdded(change: ItemVectorsAdded): Promise<void> {
    await this.#publisher.publish(`${this.#prefix}:itemvec`, JSON.stringify(change));
  }

  onItemVectorsAdded(listener: (change: ItemVectorsAdded) => void): Promise<() => Promise<void>> {
    return this.#listen(`${this.#prefix}:itemvec`, (message) => listener(JSON.parse(message) as ItemVectorsAdded));
  }

  async publishPlacementChanged(change: Omit<PlacementChanged, 'origin'>): Promise<void> {
    await this.#publisher.publish(`${this.#prefix}:placement`, JSON.stringify({ ...change, origin: this.instanceId }));
  }

  onPlacementChanged(listener: (change: PlacementChanged) => void): Promise<() => Promise<void>> {
    return this.#listen(`${this.#prefix}:placement`, (message) => listener(JSON.parse(message) as PlacementChanged));
  }

  async publishExperimentChanged(change: Omit<ExperimentChanged, 'origin'>): Promise<void> {
    await this.#publisher.publish(`${this.#prefix}:experiment`, JSON.stringify({ ...change, origin: this.instanceId }));
  }

  onExperimentChanged(listener: (change: ExperimentChanged) => void): Promise<() => Promise<void>> {
    return this.#listen(`${this.#prefix}:experiment`, (message) => listener(JSON.parse(message) as ExperimentChanged));
  }

  async publishShopperForgotten(change: ShopperForgotten): Promise<void> {
    await this.#publisher.publish(`${this.#prefix}:forgotten`, JSON.stringify(change));
  }

  onShopperForgotten(listener: (change: ShopperForgotten) => void): Promise<() => Promise<void>> {
    return this.#listen(`${this.#prefix}:forgotten`, (message) => listener(JSON.parse(message) as ShopperForgotten));
  }

  /** Announces that an API key was created or revoked: every gateway reloads its key set at once. */
  async publishKeysChanged(): Promise<void> {
    await this.#publisher.publish(`${this.#prefix}:keys`, JSON.stringify({ origin: this.instanceId }));
  }

  onKeysChanged(listener: () => void): Promise<() => Promise<void>> {
    return this.#listen(`${this.#prefix}:keys`, () => listener());
  }

  /** Resolves once Redis confirmed the subscription, so no message published afterwards is missed. */
  async #listen(channel: string, listener: Listener): Promise<() => Promise<void>> {
    let entry = this.#channels.get(channel);
    if (!entry) {
      entry = { listeners: new Set(), subscribed: this.#subscriber.subscribe(channel) };
      this.#channels.set(channel, entry);
    }
    entry.listeners.add(listener);
    await entry.subscribed;
    return async () => {
      const current = this.#channels.get(channel);
      if (!current?.listeners.delete(listener) || current.listeners.size > 0) return;
      this.#channels.delete(channel);
      await this.#subscriber.unsubscribe(channel).catch(() => undefined);
    };
  }
}
