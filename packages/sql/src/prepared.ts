// Statements built and compiled once. Kysely builds an immutable query tree
// and compiles it to SQL text on every call — 3–9 µs per statement, about a
// tenth of a lease cycle's CPU on SQLite (measured), and much of its garbage —
// although the statements a lease cycle runs never change shape. A prepared
// statement is compiled once, with a marker in place of each argument; each
// run only puts the arguments where the markers went. The SQL text is the
// same every time, so the drivers' own statement caches keep hitting too.
import type { CompiledQuery, Kysely, QueryResult } from 'kysely';

/** Stands for argument `index` while a statement is compiled (only markers are passed then, never real values). */
const marker = (index: number): string => `<attache argument ${index}>`;

type Slot = { argument: number } | { constant: unknown };

/** What runs a compiled query: the store's Kysely or the transaction's. */
export type QueryRunner = Pick<Kysely<never>, 'executeQuery'>;

export interface PreparedStatement<Args extends readonly unknown[], Row> {
  run(runner: QueryRunner, ...args: Args): Promise<QueryResult<Row>>;
}

/**
 * `compile` builds the statement from its arguments and compiles it; it is
 * called once, with markers for arguments, and must use every argument as a
 * bound parameter (never in the SQL text, never to choose the statement's
 * shape), which the first run checks.
 */
export function prepared<Args extends readonly unknown[], Row>(
  arity: Args['length'],
  compile: (...args: Args) => CompiledQuery<Row>,
): PreparedStatement<Args, Row> {
  let template: { compiled: CompiledQuery<Row>; slots: Slot[] } | undefined;
  const templateOf = () => {
    if (template) return template;
    const markers = Array.from({ length: arity }, (_, index) => marker(index));
    // The markers stand in for arguments of any type: only their positions among the parameters matter.
    const compiled = compile(...(markers as unknown as Args));
    const used = new Set<number>();
    const slots = compiled.parameters.map((value): Slot => {
      const argument = typeof value === 'string' ? markers.indexOf(value) : -1;
      if (argument < 0) return { constant: value };
      used.add(argument);
      return { argument };
    });
    if (used.size !== arity) throw new Error(`prepared statement: not every argument is a parameter of ${compiled.sql}`);
    template = { compiled, slots };
    return template;
  };
  return {
    async run(runner, ...args) {
      const { compiled, slots } = templateOf();
      const parameters = slots.map((slot) => ('argument' in slot ? args[slot.argument] : slot.constant));
      return runner.executeQuery({ ...compiled, parameters });
    },
  };
}
