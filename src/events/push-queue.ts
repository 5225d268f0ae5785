/**
 * An async iterator fed by pushes, for streams with many readers: a push hands its value straight
 * to a waiting `next()` or buffers it, and costs one promise per value, not a chain of them.
 * With `limit`, a reader that falls behind loses the oldest values. `return()` (the reader is done)
 * or `end()` (the source is) finishes it; `onReturn` runs once either way.
 */
export class PushQueue<T> implements AsyncIterableIterator<T> {
  private buffer: T[] = [];
  private head = 0;
  private waiting: ((r: IteratorResult<T>) => void) | undefined;
  private failWaiting: ((err: unknown) => void) | undefined;
  private finished = false;
  private failure: { err: unknown } | undefined;

  constructor(
    private readonly onReturn: () => void = () => {},
    private readonly limit = Number.POSITIVE_INFINITY,
  ) {}

  /** Whether it has ended (its values may still be buffered). */
  get closed(): boolean {
    return this.finished;
  }

  push(value: T): void {
    if (this.finished) return;
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = this.failWaiting = undefined;
      waiting({ value, done: false });
      return;
    }
    this.buffer.push(value);
    if (this.buffer.length - this.head > this.limit) this.head++;
    if (this.head > 1024 && this.head * 2 > this.buffer.length) this.compact();
  }

  /** No more values: the reader gets those buffered, then the end (or `err`). */
  end(err?: unknown): void {
    if (this.finished) return;
    this.finished = true;
    if (err !== undefined) this.failure = { err };
    if (this.waiting) this.settleWaiting();
    this.onReturn();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.buffer.length) {
      const value = this.buffer[this.head]!;
      this.buffer[this.head++] = undefined as T;
      return Promise.resolve({ value, done: false });
    }
    if (this.finished) return this.failure ? Promise.reject(this.failure.err) : Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failWaiting = reject;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.buffer = [];
    this.head = 0;
    this.failure = undefined;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private settleWaiting() {
    const [resolve, reject] = [this.waiting!, this.failWaiting!];
    this.waiting = this.failWaiting = undefined;
    if (this.failure) reject(this.failure.err);
    else resolve({ value: undefined, done: true });
  }

  private compact() {
    this.buffer = this.buffer.slice(this.head);
    this.head = 0;
  }
}
