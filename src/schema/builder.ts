import SchemaBuilder from '@pothos/core';
import RelayPlugin from '@pothos/plugin-relay';
import ValidationPlugin from '@pothos/plugin-validation';
import { badInput } from '../errors.js';
import type { Context } from '../server/context.js';

/** The Pothos builder and its plugins; types are defined in the files beside this one. */
export const builder = new SchemaBuilder<{
  Context: Context;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
    /** A file of a GraphQL multipart request. */
    Upload: { Input: File; Output: never };
  };
  DefaultFieldNullability: false;
}>({
  plugins: [RelayPlugin, ValidationPlugin],
  defaultFieldNullability: false,
  relay: {
    // Kiln's ids are plain UUIDs; connections only, no global Node ids.
    nodeQueryOptions: false,
    nodesQueryOptions: false,
    cursorType: 'String',
  },
  validation: {
    // The contract's error: BAD_USER_INPUT naming the input path (e.g. `input.prompt`).
    validationError: (failure) => {
      const issue = failure.issues[0]!;
      const field = (issue.path ?? []).map((p) => (typeof p === 'object' ? p.key : p)).map(String).join('.');
      return badInput(field, issue.message);
    },
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
