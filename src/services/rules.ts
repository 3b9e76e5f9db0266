import { DomainError, ErrorCode, InvalidInputError } from '../errors.ts';
import { checkId, MAX_K } from './validation.ts';

/** Most pins one rule set (a request's or a placement's) may hold. */
export const MAX_PINS = 20;
/** Most boosts one rule set may hold. */
export const MAX_BOOSTS = 50;
/** Most ids or categories one filter list may hold (`categories`, `itemIds`, …). */
export const MAX_FILTER_VALUES = 500;
/** Most keys of a filter's `attributes`. */
export const MAX_ATTRIBUTES = 20;
/** Longest placement id. */
export const MAX_PLACEMENT_ID_LENGTH = 100;
/** Longest `excludeSeenWithinHours` window: a year. */
export const MAX_SEEN_WINDOW_HOURS = 24 * 366;
/** Largest price a filter may name (the catalogue's own bound). */
const MAX_PRICE = 1e10;

/** A value an `attributes` filter compares an item's attribute with (equality). */
export type AttributeValue = string | number | boolean;

/** Hard constraints on items, as a client sends them (GraphQL `ItemFilterInput`). Absent means no constraint. */
export interface ItemFilterInput {
  categories?: readonly string[] | null;
  excludeCategories?: readonly string[] | null;
  priceMin?: number | null;
  priceMax?: number | null;
  /** True (the default): in-stock items only. False lifts the stock requirement. */
  inStock?: boolean | null;
  itemIds?: readonly string[] | null;
  excludeItemIds?: readonly string[] | null;
  /** Equality on the item's attributes, e.g. `{"brand":"acme"}`: an object of strings, numbers and booleans. */
  attributes?: unknown;
}

/** A rule set as a client sends it (GraphQL `RulesInput`, a placement's rules). */
export interface RulesInput {
  filter?: ItemFilterInput | null;
  boosts?: readonly { filter: ItemFilterInput; factor: number }[] | null;
  pins?: readonly { itemId: string; position: number }[] | null;
  maxPerCategory?: number | null;
  diversity?: number | null;
  excludeSeenWithinHours?: number | null;
  excludePurchased?: boolean | null;
}

/** A validated filter, plain JSON (placements store it as is); absent keys constrain nothing. */
export type ItemFilter = {
  categories?: string[];
  excludeCategories?: string[];
  priceMin?: number;
  priceMax?: number;
  inStock?: boolean;
  itemIds?: string[];
  excludeItemIds?: string[];
  attributes?: Record<string, AttributeValue>;
};

/** A validated rule set, plain JSON (type aliases, not interfaces, so that Prisma takes them as JSON). */
export type Rules = {
  filter?: ItemFilter;
  boosts?: { filter: ItemFilter; factor: number }[];
  pins?: { itemId: string; position: number }[];
  maxPerCategory?: number;
  diversity?: number;
  excludeSeenWithinHours?: number;
  excludePurchased?: boolean;
};

/** Where a merged rule came from. */
export type RuleOrigin = 'PLACEMENT' | 'REQUEST';

/** The part of a filter an item failed, as the dry run reports it. */
export type FilterClause =
  | 'categories'
  | 'excludeCategories'
  | 'priceMin'
  | 'priceMax'
  | 'inStock'
  | 'itemIds'
  | 'excludeItemIds'
  | 'attributes';

/** What a filter reads of an item; the catalogue keeps it per item (price as a number, not a Decimal). */
export interface FilterableItem {
  id: string;
  category: string | null;
  price: number | null;
  inStock: boolean;
  attributes: unknown;
}

/** A filter compiled for testing many items: sets instead of arrays, merged constraints. */
export interface CompiledFilter {
  /** Allowed categories; null = any. An empty set lets nothing through (two placements' lists did not meet). */
  categories: ReadonlySet<string> | null;
  excludeCategories: ReadonlySet<string>;
  priceMin: number | null;
  priceMax: number | null;
  inStock: boolean;
  itemIds: ReadonlySet<string> | null;
  excludeItemIds: ReadonlySet<string>;
  /** Every pair must hold; the same key twice with different values matches nothing. */
  attributes: readonly (readonly [string, AttributeValue])[];
  /** True when the filter constrains more than stock (a narrower walk or scan is worth it). */
  narrow: boolean;
}

/** A boost, pin or cap after the merge, with where it came from (for explanations). */
export interface RuleRef {
  origin: RuleOrigin;
  /** Its index in its origin's list. */
  index: number;
}

export interface EffectiveBoost extends RuleRef {
  filter: CompiledFilter;
  factor: number;
}

export interface EffectivePin extends RuleRef {
  itemId: string;
  position: number;
}

/** A request's rules merged with its placement's: what the ranking applies. */
export interface EffectiveRules {
  filter: CompiledFilter;
  boosts: readonly EffectiveBoost[];
  /** Ordered by position; at most one per position and per item. */
  pins: readonly EffectivePin[];
  maxPerCategory: number | null;
  /** 0 = pure relevance … 1 = most diverse. */
  diversity: number;
  excludeSeenWithinHours: number | null;
  excludePurchased: boolean;
  /** True when boosts, pins, a cap or diversity may order the list otherwise than the sources do. */
  reorders: boolean;
}

/** The rules of a request that names none: in-stock items the shopper did not buy, in the sources' order. */
export const NO_RULES: EffectiveRules = Object.freeze({
  filter: compileFilter([]),
  boosts: [],
  pins: [],
  maxPerCategory: null,
  diversity: 0,
  excludeSeenWithinHours: null,
  excludePurchased: true,
  reorders: false,
});

const invalid = (field: string, rule: string, message: string) => new InvalidInputError(field, rule, message);

function checkPrice(field: string, value: number | null | undefined): number | undefined {
  if (value == null) return undefined;
  if (!Number.isFinite(value)) throw invalid(field, 'finite', 'must be a finite number');
  if (value < 0) throw invalid(field, 'min', `must not be negative (got ${value})`);
  if (value >= MAX_PRICE) throw invalid(field, 'max', `must be below ${MAX_PRICE}`);
  return value;
}

function checkIdList(field: string, values: readonly string[] | null | undefined): string[] | undefined {
  if (values == null) return undefined;
  if (values.length > MAX_FILTER_VALUES) {
    throw invalid(field, 'maxItems', `at most ${MAX_FILTER_VALUES} values (got ${values.length})`);
  }
  for (const [index, value] of values.entries()) checkId(`${field}[${index}]`, value);
  return [...new Set(values)];
}

function checkAttributes(field: string, value: unknown): Record<string, AttributeValue> | undefined {
  if (value == null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(field, 'type', 'must be a JSON object of strings, numbers and booleans');
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_ATTRIBUTES) {
    throw invalid(field, 'maxItems', `at most ${MAX_ATTRIBUTES} attributes (got ${entries.length})`);
  }
  const out: Record<string, AttributeValue> = {};
  for (const [key, entry] of entries) {
    checkId(`${field}.${key}`, key);
    if (typeof entry === 'string') out[key] = checkId(`${field}.${key}`, entry, false);
    else if (typeof entry === 'boolean' || (typeof entry === 'number' && Number.isFinite(entry))) out[key] = entry;
    else throw invalid(`${field}.${key}`, 'type', 'must be a string, a finite number or a boolean');
  }
  return out;
}

/** Validates a filter; the errors name `path` and the field inside it. */
export function checkFilter(path: string, input: ItemFilterInput): ItemFilter {
  const field = (name: string) => `${path}.${name}`;
  const filter: ItemFilter = {};
  const categories = checkIdList(field('categories'), input.categories);
  if (categories) filter.categories = categories;
  const excludeCategories = checkIdList(field('excludeCategories'), input.excludeCategories);
  if (excludeCategories) filter.excludeCategories = excludeCategories;
  const priceMin = checkPrice(field('priceMin'), input.priceMin);
  if (priceMin !== undefined) filter.priceMin = priceMin;
  const priceMax = checkPrice(field('priceMax'), input.priceMax);
  if (priceMax !== undefined) filter.priceMax = priceMax;
  if (priceMin !== undefined && priceMax !== undefined && priceMin > priceMax) {
    throw invalid(field('priceMin'), 'lessOrEqualPriceMax', `must not exceed priceMax (${priceMin} > ${priceMax})`);
  }
  if (input.inStock != null) filter.inStock = input.inStock;
  const itemIds = checkIdList(field('itemIds'), input.itemIds);
  if (itemIds) filter.itemIds = itemIds;
  const excludeItemIds = checkIdList(field('excludeItemIds'), input.excludeItemIds);
  if (excludeItemIds) filter.excludeItemIds = excludeItemIds;
  const attributes = checkAttributes(field('attributes'), input.attributes);
  if (attributes) filter.attributes = attributes;
  return filter;
}

/**
 * Validates a rule set. `k` is the list length of a request (pins must fall within it); a placement's rules are
 * checked without one (pins within 1…MAX_K; those beyond a request's k are left out).
 */
export function checkRules(path: string, input: RulesInput, k?: number): Rules {
  const field = (name: string) => `${path}.${name}`;
  const rules: Rules = {};
  if (input.filter != null) rules.filter = checkFilter(field('filter'), input.filter);
  if (input.boosts != null) {
    if (input.boosts.length > MAX_BOOSTS) {
      throw invalid(field('boosts'), 'maxItems', `at most ${MAX_BOOSTS} boosts (got ${input.boosts.length})`);
    }
    rules.boosts = input.boosts.map((boost, index) => {
      const at = `${field('boosts')}[${index}]`;
      if (!Number.isFinite(boost.factor) || boost.factor <= 0) {
        throw invalid(`${at}.factor`, 'range', `must be a finite number above 0 (got ${boost.factor})`);
      }
      return { filter: checkFilter(`${at}.filter`, boost.filter), factor: boost.factor };
    });
  }
  if (input.pins != null) {
    if (input.pins.length > MAX_PINS) {
      throw invalid(field('pins'), 'maxItems', `at most ${MAX_PINS} pins (got ${input.pins.length})`);
    }
    const max = k ?? MAX_K;
    const positions = new Set<number>();
    const items = new Set<string>();
    rules.pins = input.pins.map((pin, index) => {
      const at = `${field('pins')}[${index}]`;
      checkId(`${at}.itemId`, pin.itemId);
      if (!Number.isInteger(pin.position) || pin.position < 1 || pin.position > max) {
        throw invalid(`${at}.position`, 'range', `must be an integer from 1 to ${max}${k ? ' (k)' : ''}`);
      }
      if (positions.has(pin.position)) {
        throw invalid(`${at}.position`, 'unique', `position ${pin.position} is pinned twice`);
      }
      if (items.has(pin.itemId)) throw invalid(`${at}.itemId`, 'unique', `${pin.itemId} is pinned twice`);
      positions.add(pin.position);
      items.add(pin.itemId);
      return { itemId: pin.itemId, position: pin.position };
    });
  }
  if (input.maxPerCategory != null) {
    if (!Number.isInteger(input.maxPerCategory) || input.maxPerCategory < 1) {
      throw invalid(field('maxPerCategory'), 'range', `must be an integer of at least 1 (got ${input.maxPerCategory})`);
    }
    rules.maxPerCategory = input.maxPerCategory;
  }
  if (input.diversity != null) {
    if (!(input.diversity >= 0 && input.diversity <= 1)) {
      throw invalid(field('diversity'), 'range', `must be from 0 to 1 (got ${input.diversity})`);
    }
    rules.diversity = input.diversity;
  }
  if (input.excludeSeenWithinHours != null) {
    const hours = input.excludeSeenWithinHours;
    if (!Number.isInteger(hours) || hours < 1 || hours > MAX_SEEN_WINDOW_HOURS) {
      throw invalid(
        field('excludeSeenWithinHours'),
        'range',
        `must be an integer from 1 to ${MAX_SEEN_WINDOW_HOURS} (got ${hours})`,
      );
    }
    rules.excludeSeenWithinHours = hours;
  }
  if (input.excludePurchased != null) rules.excludePurchased = input.excludePurchased;
  return rules;
}

/** Validates a placement id (an argument named `field`). */
export function checkPlacementId(field: string, id: string): string {
  checkId(field, id);
  if (id.length > MAX_PLACEMENT_ID_LENGTH) {
    throw invalid(field, 'maxLength', `must be at most ${MAX_PLACEMENT_ID_LENGTH} characters (got ${id.length})`);
  }
  return id;
}

/** NOT_FOUND for a placement a request names that does not exist. */
export function unknownPlacement(field: string, id: string): DomainError {
  return new DomainError(ErrorCode.NOT_FOUND, `${field}: no placement ${id}`, { field, rule: 'exists' });
}

function intersect(a: ReadonlySet<string> | null, b: readonly string[] | undefined): ReadonlySet<string> | null {
  if (!b) return a;
  if (!a) return new Set(b);
  return new Set(b.filter((value) => a.has(value)));
}

/** Compiles filters into one that holds exactly when all of them hold. */
export function compileFilter(filters: readonly (ItemFilter | undefined)[]): CompiledFilter {
  let categories: ReadonlySet<string> | null = null;
  let itemIds: ReadonlySet<string> | null = null;
  const excludeCategories = new Set<string>();
  const excludeItemIds = new Set<string>();
  const attributes: [string, AttributeValue][] = [];
  let priceMin: number | null = null;
  let priceMax: number | null = null;
  let requiresStock = false;
  let relaxesStock = false;
  for (const filter of filters) {
    if (!filter) continue;
    categories = intersect(categories, filter.categories);
    itemIds = intersect(itemIds, filter.itemIds);
    for (const category of filter.excludeCategories ?? []) excludeCategories.add(category);
    for (const id of filter.excludeItemIds ?? []) excludeItemIds.add(id);
    for (const entry of Object.entries(filter.attributes ?? {})) attributes.push(entry);
    if (filter.priceMin !== undefined) priceMin = Math.max(priceMin ?? 0, filter.priceMin);
    if (filter.priceMax !== undefined) priceMax = Math.min(priceMax ?? Number.POSITIVE_INFINITY, filter.priceMax);
    if (filter.inStock === true) requiresStock = true;
    if (filter.inStock === false) relaxesStock = true;
  }
  // In stock only, unless a filter lifts it and none asks for it explicitly.
  const inStock = requiresStock || !relaxesStock;
  const narrow =
    categories !== null ||
    itemIds !== null ||
    excludeCategories.size > 0 ||
    priceMin !== null ||
    priceMax !== null ||
    attributes.length > 0;
  return { categories, excludeCategories, priceMin, priceMax, inStock, itemIds, excludeItemIds, attributes, narrow };
}

/** The first clause of the filter the item fails, or null when it passes. */
export function failedClause(filter: CompiledFilter, item: FilterableItem): FilterClause | null {
  if (filter.inStock && !item.inStock) return 'inStock';
  if (filter.excludeItemIds.has(item.id)) return 'excludeItemIds';
  if (filter.itemIds !== null && !filter.itemIds.has(item.id)) return 'itemIds';
  if (filter.categories !== null && (item.category === null || !filter.categories.has(item.category))) {
    return 'categories';
  }
  if (item.category !== null && filter.excludeCategories.has(item.category)) return 'excludeCategories';
  if (filter.priceMin !== null && (item.price === null || item.price < filter.priceMin)) return 'priceMin';
  if (filter.priceMax !== null && (item.price === null || item.price > filter.priceMax)) return 'priceMax';
  if (filter.attributes.length > 0) {
    const attributes = item.attributes;
    if (typeof attributes !== 'object' || attributes === null || Array.isArray(attributes)) return 'attributes';
    for (const [key, value] of filter.attributes) {
      if (!Object.hasOwn(attributes, key) || Reflect.get(attributes, key) !== value) return 'attributes';
    }
  }
  return null;
}

export function passes(filter: CompiledFilter, item: FilterableItem): boolean {
  return failedClause(filter, item) === null;
}

/**
 * Merges a placement's rules with a request's (the README's "How rules merge"): both filters hold; both lists of
 * boosts apply (factors multiply); the request's pins win a position or an item both pin, and the placement's
 * pins beyond k are left out; `maxPerCategory`, `diversity`, `excludeSeenWithinHours` and `excludePurchased` are
 * the request's when it gives them, else the placement's, else none, 0, none and true.
 */
export function mergeRules(placement: Rules | undefined, request: Rules | undefined, k: number): EffectiveRules {
  if (!placement && !request) return NO_RULES;
  const boosts: EffectiveBoost[] = [];
  const addBoosts = (rules: Rules | undefined, origin: RuleOrigin) => {
    rules?.boosts?.forEach((boost, index) => {
      boosts.push({ origin, index, factor: boost.factor, filter: compileFilter([boost.filter]) });
    });
  };
  addBoosts(placement, 'PLACEMENT');
  addBoosts(request, 'REQUEST');
  const pins: EffectivePin[] = [];
  const positions = new Set<number>();
  const items = new Set<string>();
  const addPins = (rules: Rules | undefined, origin: RuleOrigin) => {
    rules?.pins?.forEach((pin, index) => {
      if (pin.position > k || positions.has(pin.position) || items.has(pin.itemId)) return;
      positions.add(pin.position);
      items.add(pin.itemId);
      pins.push({ origin, index, itemId: pin.itemId, position: pin.position });
    });
  };
  addPins(request, 'REQUEST');
  addPins(placement, 'PLACEMENT');
  pins.sort((a, b) => a.position - b.position);
  const maxPerCategory = request?.maxPerCategory ?? placement?.maxPerCategory ?? null;
  const diversity = request?.diversity ?? placement?.diversity ?? 0;
  return {
    filter: compileFilter([placement?.filter, request?.filter]),
    boosts,
    pins,
    maxPerCategory,
    diversity,
    excludeSeenWithinHours: request?.excludeSeenWithinHours ?? placement?.excludeSeenWithinHours ?? null,
    excludePurchased: request?.excludePurchased ?? placement?.excludePurchased ?? true,
    reorders: boosts.length > 0 || pins.length > 0 || maxPerCategory !== null || diversity > 0,
  };
}

/** The product of the factors of the boosts whose filter the item passes, and which they were. */
export function boostOf(
  boosts: readonly EffectiveBoost[],
  item: FilterableItem,
): { factor: number; applied: EffectiveBoost[] } {
  let factor = 1;
  const applied: EffectiveBoost[] = [];
  for (const boost of boosts) {
    if (!passes(boost.filter, item)) continue;
    factor *= boost.factor;
    applied.push(boost);
  }
  return { factor, applied };
}
