// Statements compiled once (prepared.ts): each run puts its own arguments
// where the markers went, on a real SQLite database.
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { prepared } from '../src/prepared.js';

interface TestDatabase {
  items: { id: string; label: string | null; size: number; data: Uint8Array | null };
}

const opened: Kysely<TestDatabase>[] = [];

async function database(): Promise<Kysely<TestDatabase>> {
  const db = new Kysely<TestDatabase>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) });
  opened.push(db);
  await sql`create table items (id text primary key, label text, size integer not null, data blob)`.execute(db);
  return db;
}

afterEach(async () => {
  for (const db of opened.splice(0)) await db.destroy();
});

describe('prepared', () => {
  it('compiles once and runs with each call’s own arguments, of any type, null included', async () => {
    const db = await database();
    let compiled = 0;
    const insert = prepared(4, (id: string, label: string | null, size: number, data: Uint8Array | null) => {
      compiled += 1;
      return db.insertInto('items').values({ id, label, size, data }).compile();
    });
    const byId = prepared(1, (id: string) => db.selectFrom('items').selectAll().where('id', '=', id).compile());
    await insert.run(db, 'a', 'first', 1, new Uint8Array([1, 2, 3]));
    await insert.run(db, 'b', null, 2, null);
    expect(compiled).toBe(1);
    const a = (await byId.run(db, 'a')).rows[0];
    expect({ ...a, data: [...(a?.data ?? [])] }).toEqual({ id: 'a', label: 'first', size: 1, data: [1, 2, 3] });
    expect((await byId.run(db, 'b')).rows).toEqual([{ id: 'b', label: null, size: 2, data: null }]);
    expect((await byId.run(db, 'missing')).rows).toEqual([]);
  });

  it('fills an argument used twice in both places, and keeps constants the builder bound', async () => {
    const db = await database();
    const upsert = prepared(2, (id: string, label: string) =>
      db
        .insertInto('items')
        .values({ id, label, size: 7 })
        .onConflict((conflict) => conflict.column('id').doUpdateSet({ label }))
        .compile(),
    );
    await upsert.run(db, 'x', 'one');
    await upsert.run(db, 'x', 'two');
    expect(await db.selectFrom('items').selectAll().execute()).toEqual([{ id: 'x', label: 'two', size: 7, data: null }]);
  });

  it('reports the rows a write changed', async () => {
    const db = await database();
    await db.insertInto('items').values({ id: 'd', label: null, size: 0 }).execute();
    const remove = prepared(1, (id: string) => db.deleteFrom('items').where('id', '=', id).compile());
    expect(Number((await remove.run(db, 'd')).numAffectedRows)).toBe(1);
    expect(Number((await remove.run(db, 'd')).numAffectedRows)).toBe(0);
  });

  it('refuses a statement that puts an argument anywhere but in a parameter', async () => {
    const db = await database();
    const inText = prepared(1, (label: string) => db.selectFrom('items').selectAll().where('label', '=', sql.lit(label)).compile());
    await expect(inText.run(db, 'a')).rejects.toThrow(/not every argument is a parameter/);
  });
});
