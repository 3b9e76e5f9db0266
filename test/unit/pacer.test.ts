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
    const pacer = new Pacer({ concurrency: 2 });
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
    const pacer = new Pacer({ concurrency: 1 });
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
    const pacer = new Pacer({ concurrency: 1 });
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
      const pacer = new Pacer({ concurrency: 2, maxRate: 10 });
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

  it('when the loop is busier than the target then a fan-out backs off to the floor rate, and climbs back once it is not', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'performance'] });
    try {
      let busy = 0.9;
      const pacer = new Pacer({ concurrency: 1, maxRate: 80, load: { gauge: () => busy, target: 0.5, minRate: 10 } });
      let started = 0;
      const queueMany = (n: number) => {
        for (let i = 0; i < n; i++) pacer.schedule({ run: async () => void started++ });
      };
      const startsIn = async (ms: number) => {
        const before = started;
        await vi.advanceTimersByTimeAsync(ms);
        return started - before;
      };

      queueMany(400);
      const whileBusy = await startsIn(2000);
      busy = 0.2;
      await startsIn(2000);
      const rateOnceIdle = pacer.rate;
      const whileIdle = await startsIn(1000);
      busy = 0.9;
      await startsIn(1000);
      const rateBusyAgain = pacer.rate;

      // Busy throughout: the fan-out stays at the floor of 10/s (plus its one-task burst).
      expect(whileBusy).toBeLessThanOrEqual(21);
      expect(whileBusy).toBeGreaterThanOrEqual(19);
      expect(rateOnceIdle).toBe(80);
      expect(whileIdle).toBeGreaterThanOrEqual(75);
      expect(rateBusyAgain).toBe(10);
    } finally {
      vi.useRealTimers();
    }
  });

  it('when a fan-out ends then the next one starts at the floor rate and reads the load afresh', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'performance'] });
    try {
      const readings: number[] = [];
      const pacer = new Pacer({
        concurrency: 1,
        maxRate: 80,
        load: {
          gauge: () => {
            readings.push(performance.now());
            return 0;
          },
          target: 0.5,
          minRate: 10,
        },
      });
      for (let i = 0; i < 60; i++) pacer.schedule({ run: async () => undefined });
      await vi.advanceTimersByTimeAsync(5000);
      const rateAfterFanout = pacer.rate;
      const readsDuringFanout = readings.length;
      await vi.advanceTimersByTimeAsync(60_000);
      pacer.schedule({ run: async () => undefined });

      expect(rateAfterFanout).toBe(10);
      expect(readsDuringFanout).toBeGreaterThan(1);
      expect(pacer.waiting).toBe(0);
      // The new fan-out's first reading is taken when it starts, not averaged over the idle minute.
      expect(readings.at(-1)).toBe(performance.now());
    } finally {
      vi.useRealTimers();
    }
  });
});
