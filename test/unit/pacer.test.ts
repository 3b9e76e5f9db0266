import { describe, expect, it, vi } from 'vitest';
import { type PacedTask, Pacer } from '../../src/services/pacer.ts';

/** A task that runs until the test releases it, recording when it started. */
function heldTask(started: string[], name: string) {
  let release = () => {};
  const task: PacedTask & { release(): void } = {
    run: () => {
      started.push(name);
      return new Promise<void>((resolve) => {
        release = resolve;
      });
    },
    release: () => release(),
  };
  return task;
}

/** Lets settled promises' callbacks run (the pacer frees a slot in a `finally`). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Pacer', () => {
  it('when more tasks are queued than slots then at most concurrency run, in arrival order', async () => {
    const started: string[] = [];
    const pacer = new Pacer(2);
    const tasks = ['a', 'b', 'c', 'd'].map((name) => heldTask(started, name));

    for (const task of tasks) pacer.schedule(task);
    const atFirst = [...started];
    tasks[0]?.release();
    await settle();

    expect(atFirst).toEqual(['a', 'b']);
    expect(started).toEqual(['a', 'b', 'c']);
    expect(pacer.inFlight).toBe(2);
    expect(pacer.waiting).toBe(1);
    expect(pacer.maxInFlight).toBe(2);
  });

  it('when a waiting task is scheduled again then it runs once', async () => {
    const started: string[] = [];
    const pacer = new Pacer(1);
    const blocker = heldTask(started, 'blocker');
    const twice = heldTask(started, 'twice');

    pacer.schedule(blocker);
    pacer.schedule(twice);
    pacer.schedule(twice);
    blocker.release();
    await settle();
    twice.release();
    await settle();

    expect(started).toEqual(['blocker', 'twice']);
    expect(pacer.inFlight).toBe(0);
  });

  it('when a waiting task is cancelled or a running one fails then the others still run', async () => {
    const started: string[] = [];
    const pacer = new Pacer(1);
    const failing: PacedTask = {
      run: async () => {
        started.push('failing');
        throw new Error('boom');
      },
    };
    const cancelled = heldTask(started, 'cancelled');
    const last = heldTask(started, 'last');

    pacer.schedule(failing);
    pacer.schedule(cancelled);
    pacer.schedule(last);
    pacer.cancel(cancelled);
    await settle();

    expect(started).toEqual(['failing', 'last']);
  });

  it('when a rate is set then starts beyond the burst wait for tokens, one per 1/rate seconds', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'performance'] });
    try {
      const started: string[] = [];
      const pacer = new Pacer(2, 10);
      const tasks = ['a', 'b', 'c', 'd'].map((name) => ({ run: async () => void started.push(name) }));

      for (const task of tasks) pacer.schedule(task);
      await vi.advanceTimersByTimeAsync(0);
      const burst = [...started];
      await vi.advanceTimersByTimeAsync(100);
      const afterOneTick = [...started];
      await vi.advanceTimersByTimeAsync(100);

      expect(burst).toEqual(['a', 'b']);
      expect(afterOneTick).toEqual(['a', 'b', 'c']);
      expect(started).toEqual(['a', 'b', 'c', 'd']);
    } finally {
      vi.useRealTimers();
    }
  });
});
