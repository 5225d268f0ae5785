import type { z } from 'zod';
import { builder } from './builder.js';

type FieldType = 'String' | 'Int' | 'Float' | 'Boolean' | 'ID';
type Meta = { graphql?: string; description?: string };

/**
 * The input type of a zod object: one field per key, its GraphQL type from the zod type (or the
 * `graphql` meta: `ID`, `Float`, or the name of an enum in `refs`; lists of scalars too),
 * required unless optional or nullable, described by its zod description. Inputs are checked
 * against the same object.
 */
export function inputTypeFromZod(name: string, schema: z.ZodObject, refs: Record<string, unknown> = {}, description?: string) {
  return builder
    .inputType(name, {
      ...(description ? { description } : {}),
      fields: (t) =>
        Object.fromEntries(
          Object.entries(schema.shape).map(([key, field]) => {
            const { base, meta, optional } = unwrap(field as z.ZodType);
            const named = meta.graphql && refs[meta.graphql];
            const type = named ?? meta.graphql ?? typeOf(key, base);
            // Pothos types each field from its declaration; these are built from data, so it cannot.
            return [key, t.field({ type: type as FieldType, required: !optional, ...(meta.description ? { description: meta.description } : {}) })];
          }),
        ),
    })
    .validate(schema);
}

function unwrap(schema: z.ZodType): { base: z.ZodType; meta: Meta; optional: boolean } {
  let current = schema;
  let optional = false;
  let meta: Meta = { ...(current.meta() as Meta | undefined), ...(current.description ? { description: current.description } : {}) };
  while (['optional', 'nullable', 'default'].includes(current._zod.def.type)) {
    optional = true;
    current = (current._zod.def as unknown as { innerType: z.ZodType }).innerType;
    meta = { ...(current.meta() as Meta | undefined), ...(current.description ? { description: current.description } : {}), ...meta };
  }
  return { base: current, meta, optional };
}

/** A scalar, or a list of them (`[String!]`). */
function typeOf(key: string, schema: z.ZodType): FieldType | [FieldType] {
  if (schema._zod.def.type !== 'array') return scalarOf(key, schema);
  return [scalarOf(key, (schema._zod.def as unknown as { element: z.ZodType }).element)];
}

function scalarOf(key: string, schema: z.ZodType): FieldType {
  const type = schema._zod.def.type;
  if (type === 'string') return 'String';
  if (type === 'boolean') return 'Boolean';
  if (type === 'number') return (schema as z.ZodNumber).isInt ? 'Int' : 'Float';
  throw new Error(`${key}: no GraphQL type for a zod ${type}; say one with .meta({ graphql })`);
}
