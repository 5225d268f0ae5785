import type { EntitySchemaColumnOptions } from 'typeorm';

/** pg returns int8 as a string; Kiln's int8 values (seeds, byte counts) fit in a double. */
export const bigintNumber: EntitySchemaColumnOptions = {
  type: 'bigint',
  transformer: { to: (v: number | null) => v, from: (v: string | null) => (v === null ? null : Number(v)) },
};

/** Millisecond precision, like JavaScript dates, so a cursor made from a row finds it again. */
export const createdAt: EntitySchemaColumnOptions = { type: 'timestamptz', precision: 3, name: 'created_at', default: () => 'now()' };
