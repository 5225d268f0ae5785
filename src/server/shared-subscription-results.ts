import { createSourceEventStream, type DocumentNode, execute, type ExecutionArgs, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * One execution per event per distinct operation, however many subscribers receive it: the
 * event hub hands every watcher of a job the same event object, so the result of executing an
 * operation's selection on it is the same for all subscribers with the same document and
 * variables (subscription fields resolve from the event alone). With a thousand subscribers to
 * one job, each event is executed once instead of a thousand times; each subscriber still gets
 * its own message, and results pass every plugin's per-result hooks as before.
 */
export function useSharedSubscriptionResults(): Plugin {
  const documents = new WeakMap<DocumentNode, number>();
  let nextDocument = 0;
  const results = new WeakMap<object, Map<string, ExecutionResult | Promise<ExecutionResult>>>();
  return {
    onSubscribe: ({ setSubscribeFn }) => {
      setSubscribeFn(async (args: ExecutionArgs) => {
        const stream = await createSourceEventStream(args);
        if (!(Symbol.asyncIterator in stream)) return stream as ExecutionResult;
        let documentId = documents.get(args.document);
        if (documentId === undefined) documents.set(args.document, (documentId = nextDocument++));
        const key = `${documentId}:${args.operationName ?? ''}:${JSON.stringify(args.variableValues ?? {})}`;
        return eachResult(stream, (payload) => {
          if (typeof payload !== 'object' || payload === null) return execute({ ...args, rootValue: payload });
          let byOperation = results.get(payload);
          if (!byOperation) results.set(payload, (byOperation = new Map()));
          let result = byOperation.get(key);
          if (!result) byOperation.set(key, (result = execute({ ...args, rootValue: payload })));
          return result;
        });
      });
    },
  };
}

/**
 * The stream's events as results; ending the results ends the stream. A plain iterator rather
 * than an async generator: one promise per event, where a generator's `for await … yield await`
 * costs several, for every subscriber.
 */
function eachResult(stream: AsyncIterable<unknown>, resultOf: (payload: unknown) => ExecutionResult | Promise<ExecutionResult>): AsyncIterableIterator<ExecutionResult> {
  const source = stream[Symbol.asyncIterator]();
  const map = (r: IteratorResult<unknown>): IteratorResult<ExecutionResult> | Promise<IteratorResult<ExecutionResult>> => {
    if (r.done) return { value: undefined, done: true };
    const result = resultOf(r.value);
    return result instanceof Promise ? result.then((value) => ({ value, done: false })) : { value: result, done: false };
  };
  return {
    next: () => source.next().then(map),
    return: async () => {
      await source.return?.();
      return { value: undefined, done: true };
    },
    throw: async (err: unknown) => {
      if (source.throw) return source.throw(err).then(map);
      throw err;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
