// Online Retail II → interaction rows: purchases only (no cancellations, positive quantity and price),
// customers with an id only, products only (StockCodes that are postage, fees, manual adjustments… are dropped).
// Data: Chen, D. (2012). Online Retail II. UCI ML Repository, CC BY 4.0, https://doi.org/10.24432/C5CG6D
import { csvRecords } from './interactions-csv.ts';

/** Where the shared copy lives, relative to the project root. */
export const RETAIL_GZ = '../shared/datasets/online-retail-ii/online_retail_II.csv.gz';

/** StockCodes that are not products (postage, manual, discount, fees, samples, tests…). */
const NOT_PRODUCTS = new Set([
  'POST',
  'DOT',
  'M',
  'm',
  'D',
  'C2',
  'C3',
  'S',
  'B',
  'CRUK',
  'PADS',
  'BANK CHARGES',
  'AMAZONFEE',
  'ADJUST',
  'ADJUST2',
  'TEST001',
  'TEST002',
  'SP1002',
  'GIFT',
]);

/** True for a StockCode that names a product: real products start with five digits (85123A, 22423…). */
export function isProductCode(code: string): boolean {
  const c = code.trim();
  if (NOT_PRODUCTS.has(c) || NOT_PRODUCTS.has(c.toUpperCase())) return false;
  return /^\d{5}/.test(c);
}

/** One purchase line as written to the interaction CSV. */
export interface RetailRow {
  readonly user: string;
  readonly item: string;
  /** ISO-8601, the shop's local time read as UTC (only the order matters). */
  readonly timestamp: string;
  readonly quantity: number;
}

/** Streams the purchase rows of the (gzipped) Online Retail II CSV. */
export async function* readRetailPurchases(path = RETAIL_GZ): AsyncGenerator<RetailRow> {
  let header = true;
  for await (const r of csvRecords(path)) {
    if (header) {
      header = false;
      continue;
    }
    const [invoice = '', stockCode = '', , quantity = '', invoiceDate = '', price = '', customer = ''] = r;
    if (invoice.startsWith('C') || customer.trim() === '' || !isProductCode(stockCode)) continue;
    const q = Number(quantity);
    if (!(q > 0) || !(Number(price) > 0)) continue;
    yield {
      // Customer IDs come as "13085" or "13085.0" depending on the sheet export.
      user: customer.trim().replace(/\.0$/, ''),
      item: stockCode.trim().toUpperCase(),
      timestamp: `${invoiceDate.trim().replace(' ', 'T')}Z`,
      quantity: q,
    };
  }
}
