import {
  type ArgumentNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** An unpaired UTF-16 surrogate: jsonb refuses it, and text columns would store U+FFFD instead. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why Postgres would refuse (or silently change) this text, or undefined when it stores it as it is. */
export function unstorable(text: string): string | undefined {
  if (text.includes('\u0000')) return 'must not contain NUL characters (U+0000)';
  if (LONE_SURROGATE.test(text)) return 'must not contain unpaired UTF-16 surrogates';
  return undefined;
}

/**
 * Every string argument of an operation, checked before it runs: Postgres refuses NUL in text
 * and jsonb (`invalid byte sequence for encoding "UTF8": 0x00`), so such input is BAD_USER_INPUT
 * naming its path (`input.prompt`, `inputs.2.negativePrompt`), whether it came in variables or
 * inline in the document, over HTTP and graphql-ws alike, for every field and directive.
 */
export function useStorableText(): Plugin {
  const check = ({ args, setResultAndStopExecution }: CheckPayload) => {
    const refusal = findUnstorable(args.document, args.operationName, args.variableValues ?? {});
    if (refusal) {
      setResultAndStopExecution({
        errors: [new GraphQLError(`${refusal.field} ${refusal.problem}`, { extensions: { code: 'BAD_USER_INPUT', field: refusal.field } })],
      });
    }
  };
  return { onExecute: check, onSubscribe: check };
}

interface CheckPayload {
  args: { document: DocumentNode; operationName?: string | null; variableValues?: Record<string, unknown> | null };
  setResultAndStopExecution(result: { errors: GraphQLError[] }): void;
}

/** What `walk` visits: a literal in the document, or a value from the variables, at its input path. */
type Item = { node: ValueNode; path: string } | { value: unknown; path: string };

/** The first argument value Postgres could not store, walked without recursion (inputs may nest deep). */
export function findUnstorable(
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown>,
): { field: string; problem: string } | undefined {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation = operationName ? operations.find((o) => o.name?.value === operationName) : operations[0];
  if (!operation) return undefined;
  const fragments = new Map(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((f) => [f.name.value, f]),
  );
  const defaults = new Map(operation.variableDefinitions?.map((v) => [v.variable.name.value, v.defaultValue]) ?? []);

  // Both walked breadth-first, in document order: arrays used as queues, growing as they go.
  const items: Item[] = [];
  const pending: SelectionSetNode[] = [operation.selectionSet];
  const seenFragments = new Set<string>();
  const addArguments = (args: readonly ArgumentNode[] | undefined) => args?.forEach((a) => items.push({ node: a.value, path: a.name.value }));
  addArguments(operation.directives?.flatMap((d) => d.arguments ?? []));
  for (let s = 0; s < pending.length; s++) {
    for (const selection of pending[s]!.selections) {
      addArguments(selection.directives?.flatMap((d) => d.arguments ?? []));
      if (selection.kind === Kind.FIELD) {
        addArguments(selection.arguments);
        if (selection.selectionSet) pending.push(selection.selectionSet);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        pending.push(selection.selectionSet);
      } else if (!seenFragments.has(selection.name.value)) {
        seenFragments.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) pending.push(fragment.selectionSet);
      }
    }
  }

  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    if ('node' in item) {
      const { node, path } = item;
      if (node.kind === Kind.STRING) {
        const problem = unstorable(node.value);
        if (problem) return { field: path, problem };
      } else if (node.kind === Kind.LIST) {
        node.values.forEach((v, i) => items.push({ node: v, path: `${path}.${i}` }));
      } else if (node.kind === Kind.OBJECT) {
        node.fields.forEach((f) => items.push({ node: f.value, path: `${path}.${f.name.value}` }));
      } else if (node.kind === Kind.VARIABLE) {
        const name = node.name.value;
        if (Object.hasOwn(variables, name)) items.push({ value: variables[name], path });
        else if (defaults.get(name)) items.push({ node: defaults.get(name)!, path });
      }
      continue;
    }
    const { value, path } = item;
    if (typeof value === 'string') {
      const problem = unstorable(value);
      if (problem) return { field: path, problem };
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => items.push({ value: v, path: `${path}.${i}` }));
    } else if (isPlainObject(value)) {
      for (const [key, v] of Object.entries(value)) {
        const problem = unstorable(key);
        if (problem) return { field: path, problem: `key ${JSON.stringify(key)} ${problem}` };
        items.push({ value: v, path: `${path}.${key}` });
      }
    }
  }
  return undefined;
}

/** JSON objects from the request; uploaded files and other class instances are not text. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
