import type { z } from 'zod';
import { builder } from './builder.js';

type Scalar = 'String' | 'Int' | 'Float' | 'Boolean' | 'ID';
type Meta = { graphql?: string; description?: string };
type FieldBuilder = Parameters<Parameters<typeof builder.inputType>[1]['fields']>[0];

/** Types made from zod by name: one used by several inputs (a job option's) is made once. */
const made = new Map<string, unknown>();

/**
 * The input type of a zod object: one field per key, its GraphQL type from the zod type (or the
 * `graphql` meta: `ID`, `Float`, or the name of an enum in `refs`), required unless optional or
 * nullable, described by its zod description. A nested object becomes an input type of its own
 * and an enum an enum type, each named by its `graphql` meta; a default is printed and lets the
 * client leave the field out. Inputs are checked against the same object.
 */
export function inputTypeFromZod(name: string, schema: z.ZodObject, refs: Record<string, unknown> = {}, description?: string) {
  return builder
    .inputType(name, {
      ...(description ? { description } : {}),
      fields: (t) => fieldsOf(t, schema, refs),
    })
    .validate(schema);
}

const makeEnum = (name: string, values: string[], description: string | undefined) => builder.enumType(name, { values, ...(description ? { description } : {}) });

/** The enum type of a zod enum (named, and described by its meta), made once per name. */
export function enumTypeFromZod(name: string, schema: z.ZodEnum): ReturnType<typeof makeEnum> {
  const description = (schema.meta() as Meta | undefined)?.description ?? schema.description;
  return once(name, () => makeEnum(name, schema.options as string[], description)) as ReturnType<typeof makeEnum>;
}

function fieldsOf(t: FieldBuilder, schema: z.ZodObject, refs: Record<string, unknown>) {
  return Object.fromEntries(
    Object.entries(schema.shape).map(([key, field]) => {
      const { base, meta, optional, defaultValue } = unwrap(field as z.ZodType);
      const type = typeOf(key, base, meta, refs);
      // Pothos types each field from its declaration; these are built from data, so it cannot.
      return [
        key,
        t.field({
          type: type as Scalar,
          required: !optional || defaultValue !== undefined,
          ...(defaultValue !== undefined ? { defaultValue: defaultValue as never } : {}),
          ...(meta.description ? { description: meta.description } : {}),
        }),
      ];
    }),
  );
}

function typeOf(key: string, base: z.ZodType, meta: Meta, refs: Record<string, unknown>): unknown {
  const kind = base._zod.def.type;
  if (kind === 'array') {
    const item = unwrap((base._zod.def as unknown as { element: z.ZodType }).element);
    return [typeOf(key, item.base, item.meta, refs)];
  }
  if (meta.graphql && refs[meta.graphql]) return refs[meta.graphql];
  if (kind === 'object' || kind === 'enum') {
    if (!meta.graphql) throw new Error(`${key}: name its GraphQL type with .meta({ graphql })`);
    const name = meta.graphql;
    if (kind === 'enum') return enumTypeFromZod(name, base as z.ZodEnum);
    return once(name, () =>
      builder.inputType(name, { ...(meta.description ? { description: meta.description } : {}), fields: (t) => fieldsOf(t, base as z.ZodObject, refs) }),
    );
  }
  return meta.graphql ?? scalarOf(key, base);
}

function once(name: string, make: () => unknown) {
  if (!made.has(name)) made.set(name, make());
  return made.get(name);
}

function unwrap(schema: z.ZodType): { base: z.ZodType; meta: Meta; optional: boolean; defaultValue: unknown } {
  let current = schema;
  let optional = false;
  let defaultValue: unknown;
  let meta: Meta = { ...(current.meta() as Meta | undefined), ...(current.description ? { description: current.description } : {}) };
  while (['optional', 'nullable', 'default'].includes(current._zod.def.type)) {
    optional = true;
    if (current._zod.def.type === 'default') defaultValue ??= (current._zod.def as unknown as { defaultValue: unknown }).defaultValue;
    current = (current._zod.def as unknown as { innerType: z.ZodType }).innerType;
    meta = { ...(current.meta() as Meta | undefined), ...(current.description ? { description: current.description } : {}), ...meta };
  }
  return { base: current, meta, optional, defaultValue };
}

function scalarOf(key: string, schema: z.ZodType): Scalar {
  const type = schema._zod.def.type;
  if (type === 'string') return 'String';
  if (type === 'boolean') return 'Boolean';
  if (type === 'number') return (schema as z.ZodNumber).isInt ? 'Int' : 'Float';
  throw new Error(`${key}: no GraphQL type for a zod ${type}; say one with .meta({ graphql })`);
}
