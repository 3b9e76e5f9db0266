import { readFileSync } from 'node:fs';
import { getDMMF } from '@prisma/internals';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestConfig } from '../helpers/test-env.ts';

// Postgres type of each Prisma scalar as Prisma's migrations create it (native @db types spelled out).
function expectedType(type: string, nativeType: readonly unknown[] | null | undefined): string {
  if (nativeType) {
    const [name, args] = nativeType as [string, string[]];
    const map: Record<string, string> = {
      Decimal: 'numeric',
      Char: 'character',
      Timestamptz: 'timestamp with time zone',
    };
    return `${map[name] ?? name.toLowerCase()}${name === 'Decimal' || name === 'Char' ? `(${args.join(',')})` : ''}`;
  }
  const map: Record<string, string> = {
    String: 'text',
    Boolean: 'boolean',
    Int: 'integer',
    BigInt: 'bigint',
    Float: 'double precision',
    Json: 'jsonb',
    Bytes: 'bytea',
    DateTime: 'timestamp(3) without time zone',
  };
  return map[type] ?? `enum:${type}`;
}

describe('the migrated database', () => {
  let client: pg.Client;

  beforeAll(async () => {
    const config = await createTestConfig();
    client = new pg.Client({ connectionString: config.DATABASE_URL });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
  });

  it('has exactly the models, columns, types, nullability and indexes of schema.prisma', async () => {
    const dmmf = await getDMMF({ datamodel: readFileSync('prisma/schema.prisma', 'utf8') });
    const { rows: columns } = await client.query<{
      table: string;
      column: string;
      type: string;
      nullable: string;
      udt: string;
    }>(
      `SELECT c.table_name AS table, c.column_name AS column, c.is_nullable AS nullable, c.udt_name AS udt,
              CASE WHEN c.data_type = 'USER-DEFINED' THEN 'enum:' || c.udt_name
                   WHEN c.data_type = 'numeric' THEN 'numeric(' || c.numeric_precision || ',' || c.numeric_scale || ')'
                   WHEN c.data_type = 'ARRAY' THEN substring(c.udt_name from 2) || '[]'
                   WHEN c.data_type = 'character' THEN 'character(' || c.character_maximum_length || ')'
                   ELSE c.data_type END AS type
       FROM information_schema.columns c
       WHERE c.table_schema = 'public' AND c.table_name <> '_prisma_migrations'`,
    );
    const { rows: indexes } = await client.query<{ table: string; name: string; unique: boolean; columns: string[] }>(
      `SELECT t.relname AS table, i.relname AS name, ix.indisunique AS unique,
              array_agg(a.attname::text ORDER BY k.ord) AS columns
       FROM pg_index ix
       JOIN pg_class i ON i.oid = ix.indexrelid
       JOIN pg_class t ON t.oid = ix.indrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
       CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
       WHERE n.nspname = 'public' AND t.relname <> '_prisma_migrations'
       GROUP BY t.relname, i.relname, ix.indisunique`,
    );

    const expectedColumns = dmmf.datamodel.models.flatMap((model) =>
      model.fields
        .filter((field) => field.kind !== 'object')
        .map((field) => ({
          table: model.dbName ?? model.name,
          column: field.dbName ?? field.name,
          type: `${expectedType(field.type, field.nativeType)}${field.isList ? '[]' : ''}`,
          // Prisma creates list columns without NOT NULL.
          nullable: field.isRequired && !field.isList ? 'NO' : 'YES',
        })),
    );
    const actualColumns = columns.map(({ table, column, type, nullable }) => ({ table, column, type, nullable }));
    const byKey = (a: { table: string; column: string }, b: { table: string; column: string }) =>
      `${a.table}.${a.column}`.localeCompare(`${b.table}.${b.column}`);
    expect(actualColumns.sort(byKey)).toEqual(expectedColumns.sort(byKey));

    const expectedIndexes = dmmf.datamodel.indexes.map((index) => ({
      table: index.model,
      unique: index.type === 'id' || index.type === 'unique',
      columns: index.fields.map((field) => field.name),
    }));
    const actualIndexes = indexes.map(({ table, unique, columns }) => ({ table, unique, columns }));
    const byIndex = (a: { table: string; columns: string[] }, b: { table: string; columns: string[] }) =>
      `${a.table}(${a.columns})`.localeCompare(`${b.table}(${b.columns})`);
    expect(actualIndexes.sort(byIndex)).toEqual(expectedIndexes.sort(byIndex));

    const { rows: enums } = await client.query<{ name: string; values: string[] }>(
      `SELECT t.typname::text AS name, array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS values
       FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname`,
    );
    const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
    expect(enums.sort(byName)).toEqual(
      dmmf.datamodel.enums.map((e) => ({ name: e.name, values: e.values.map((v) => v.name) })).sort(byName),
    );
  });
});
