import { createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';
import { parse } from 'csv-parse';
import type pg from 'pg';
import type { Db } from '../db/client.ts';
import { insertEvents, type NewEvent } from '../db/events.ts';
import type { Logger } from '../logger.ts';
import { Progress } from '../progress.ts';
import { demoCategoryOf } from './demo-categories.ts';

/** The bundled slice of Online Retail II (CC BY 4.0, see README): Sep–Dec 2011 purchases of known customers. */
export const DEMO_FILE = fileURLToPath(new URL('../../data/demo/online-retail-ii-slice.csv.gz', import.meta.url));

const INSERT_BATCH = 5000;
const ukTime = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', timeZoneName: 'longOffset' });

/** The file's times are UK wall-clock times; turn one into the instant it names. */
function ukWallClockToUtc(local: string): Date {
  const asIfUtc = new Date(`${local.replace(' ', 'T')}Z`);
  const offset = ukTime.formatToParts(asIfUtc).find((part) => part.type === 'timeZoneName')?.value ?? 'GMT';
  const match = /GMT([+-])(\d{2}):(\d{2})/.exec(offset);
  const offsetMs = match ? (match[1] === '-' ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3])) * 60_000 : 0;
  return new Date(asIfUtc.getTime() - offsetMs);
}

interface DemoRow {
  Invoice: string;
  StockCode: string;
  Description: string;
  Quantity: string;
  InvoiceDate: string;
  Price: string;
  'Customer ID': string;
}

export interface DemoLoad {
  events: number;
  itemIds: string[];
}

/** Any constant of our own: the session-level lock that lets one process of many load the demo data. */
const DEMO_LOCK = 7_274_600_117;
/** Longest delay a Node timer takes (about 24.8 days): "no client-side timeout" for one query. */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

/**
 * Loads the demo catalogue and purchase history when the catalogue is empty, under an advisory lock so that
 * gateways starting together load it once. The history is shifted so that its last purchase happened now,
 * so "trending" means something on the day the demo runs. The caller asks for the replay that builds online
 * features from it and for the first training. Returns how many events and which items were loaded (none
 * when the catalogue had items).
 */
export async function loadDemoDataIfEmpty(
  db: Db,
  pool: pg.Pool,
  logger: Logger,
  options: { file?: string; maxRows?: number; internalId?: (userId: string) => string } = {},
): Promise<DemoLoad> {
  const lock = await pool.connect();
  try {
    // Another gateway may be loading for a while: wait for it without the pool's statement and query timeouts.
    await lock.query('SET statement_timeout = 0');
    const waitForLock: pg.QueryConfig & { query_timeout: number } = {
      text: 'SELECT pg_advisory_lock($1)',
      values: [DEMO_LOCK],
      query_timeout: LONGEST_TIMER_MS,
    };
    await lock.query(waitForLock);
    if ((await db.item.count()) > 0) return { events: 0, itemIds: [] };
    return await loadDemoData(db, pool, logger, options);
  } finally {
    await lock.query('SELECT pg_advisory_unlock($1)', [DEMO_LOCK]).catch(() => undefined);
    // Back to the pool's timeouts, or the connection is closed rather than returned without them.
    const reset = await lock.query('RESET statement_timeout').then(
      () => true,
      () => false,
    );
    lock.release(!reset);
  }
}

async function loadDemoData(
  db: Db,
  pool: pg.Pool,
  logger: Logger,
  options: { file?: string; maxRows?: number; internalId?: (userId: string) => string },
): Promise<DemoLoad> {
  // The demo's customers are shoppers like any other: pseudonymised too when USER_ID_KEY is set.
  const internalId = options.internalId ?? ((userId: string) => userId);
  logger.info('loading the demo catalogue and purchase history (Online Retail II slice)');
  const rows: DemoRow[] = [];
  const parser = createReadStream(options.file ?? DEMO_FILE)
    .pipe(createGunzip())
    .pipe(parse({ columns: true, skip_empty_lines: true, to: options.maxRows }));
  for await (const row of parser as AsyncIterable<DemoRow>) rows.push(row);

  const items = new Map<string, { id: string; name: string; category: string; price: string; currency: string }>();
  let last = 0;
  const times = rows.map((row) => {
    const at = ukWallClockToUtc(row.InvoiceDate).getTime();
    last = Math.max(last, at);
    return at;
  });
  const shift = Date.now() - last;
  for (const row of rows) {
    // Later lines overwrite earlier ones: the newest description and price of a product win.
    const name = row.Description.trim();
    if (name) {
      items.set(row.StockCode, {
        id: row.StockCode,
        name,
        category: demoCategoryOf(name),
        price: row.Price,
        currency: 'GBP',
      });
    }
  }
  await db.item.createMany({ data: [...items.values()], skipDuplicates: true });

  const events: NewEvent[] = rows.map((row, index) => ({
    eventId: `demo-${row.Invoice}-${row.StockCode}-${index}`,
    userId: internalId(row['Customer ID'].replace(/\.0$/, '')),
    type: 'PURCHASE',
    itemId: row.StockCode,
    sessionId: `demo-${row.Invoice}`,
    quantity: Math.max(1, Number.parseInt(row.Quantity, 10) || 1),
    value: (Number(row.Price) * Number(row.Quantity)).toFixed(2),
    occurredAt: new Date((times[index] as number) + shift),
    context: { source: 'demo' },
    recommendationId: null,
  }));
  const progress = new Progress(logger, 'loading demo purchases', { total: events.length });
  for (let start = 0; start < events.length; start += INSERT_BATCH) {
    await insertEvents(pool, events.slice(start, start + INSERT_BATCH));
    progress.update(Math.min(events.length, start + INSERT_BATCH));
  }
  progress.finish({ items: items.size, events: events.length });
  return { events: events.length, itemIds: [...items.keys()] };
}
