/**
 * Categories for the demo catalogue (Online Retail II has none), derived from item names: the first row of this
 * table with a keyword that is a whole word of the upper-cased name gives the category; a name with none of them
 * is `other`. Ordered from the most specific theme to the most generic object, so "CHRISTMAS CANDLE HOLDER"
 * is `christmas` and "JUMBO BAG RED RETROSPOT" is `bags`.
 */
export const DEMO_CATEGORY_RULES: readonly (readonly [category: string, keywords: readonly string[]])[] = [
  ['christmas', ['CHRISTMAS', 'XMAS', 'ADVENT', 'SANTA', 'REINDEER', 'SNOWFLAKE']],
  ['jewellery', ['NECKLACE', 'BRACELET', 'EARRINGS', 'RING', 'DIAMANTE', 'BLING', 'BROOCH']],
  ['candles', ['CANDLE', 'CANDLES', 'T-LIGHT', 'TEALIGHT', 'LANTERN', 'NIGHTLIGHT']],
  ['bags', ['BAG', 'BAGS', 'PURSE', 'SHOPPER', 'HANDBAG']],
  [
    'kitchen',
    [
      'MUG',
      'CUP',
      'CUPS',
      'BOWL',
      'PLATE',
      'PLATES',
      'TEA',
      'TEAPOT',
      'JAR',
      'CAKE',
      'CUTLERY',
      'TRAY',
      'KITCHEN',
      'PANTRY',
      'BOTTLE',
      'LUNCH',
      'BAKING',
      'APRON',
      'NAPKINS',
      'TIN',
      'SPOON',
      'GLASS',
    ],
  ],
  [
    'stationery',
    ['CARD', 'CARDS', 'WRAP', 'PAPER', 'PENCILS', 'PENCIL', 'NOTEBOOK', 'STICKER', 'STICKERS', 'TAGS', 'ENVELOPE'],
  ],
  ['toys', ['TOY', 'GAME', 'DOLLY', 'DOLL', 'JIGSAW', 'PUZZLE', 'SPACEBOY', 'PARTY', 'BALLOON', 'KIT', 'PLAYHOUSE']],
  ['garden', ['GARDEN', 'BIRD', 'PLANT', 'WATERING', 'POT', 'FLOWER']],
  ['storage', ['BOX', 'BOXES', 'BASKET', 'STORAGE', 'CASE', 'CASES', 'CRATE']],
  [
    'home-decor',
    [
      'SIGN',
      'FRAME',
      'CLOCK',
      'CUSHION',
      'MIRROR',
      'DOORMAT',
      'HOOK',
      'DRAWER',
      'GARLAND',
      'DECORATION',
      'LIGHTS',
      'VASE',
      'ORNAMENT',
      'HOLDER',
      'HEART',
    ],
  ],
];

/** The demo category of an item name (see DEMO_CATEGORY_RULES). */
export function demoCategoryOf(name: string): string {
  const words = new Set(name.toUpperCase().split(/[^A-Z0-9-]+/));
  for (const [category, keywords] of DEMO_CATEGORY_RULES) {
    if (keywords.some((keyword) => words.has(keyword))) return category;
  }
  return 'other';
}
