import { type DocumentNode, Lexer, parse, type ParseOptions, Source, syntaxError, TokenKind } from 'graphql';
import type { Plugin } from 'graphql-yoga';

export interface ParserLimits {
  /** Tokens one document may hold (KILN_MAX_TOKENS). */
  maxTokens: number;
  /** Brackets (`{`, `[`, `(`) open at once: selections, lists and objects, arguments. */
  maxNesting: number;
}

/**
 * Deep enough for any operation Kiln's schema can answer (selections are held to KILN_MAX_DEPTH
 * by the validation rules; inputs nest a few levels), far short of what overflows the stack.
 */
export const MAX_NESTING = 64;

const OPENING = new Set<string>([TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L]);
const CLOSING = new Set<string>([TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R]);

/**
 * graphql-js parses by recursive descent, one stack frame per level of nesting or more: a list
 * nested 5,000 deep overflows the stack before any token limit (armor's included) is reached.
 * This counts tokens and open brackets in one flat pass of the lexer first, refusing a document
 * over either limit with a syntax error; then parses it with graphql-js's own token limit.
 */
export function boundedParse(limits: ParserLimits) {
  return (source: string | Source, options?: ParseOptions): DocumentNode => {
    const src = typeof source === 'string' ? new Source(source) : source;
    const lexer = new Lexer(src);
    let tokens = 0;
    let depth = 0;
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      if (++tokens > limits.maxTokens) throw syntaxError(src, token.start, `Token limit of ${limits.maxTokens} exceeded.`);
      if (OPENING.has(token.kind) && ++depth > limits.maxNesting) {
        throw syntaxError(src, token.start, `Nesting limit of ${limits.maxNesting} exceeded: selections, lists and objects may be nested at most ${limits.maxNesting} deep.`);
      }
      if (CLOSING.has(token.kind)) depth--;
    }
    return parse(src, { ...options, maxTokens: limits.maxTokens });
  };
}

/** Every document, over HTTP and graphql-ws, goes through the bounded parser. */
export function useBoundedParser(limits: ParserLimits): Plugin {
  const parseFn = boundedParse(limits);
  return { onParse: ({ setParseFn }) => setParseFn(parseFn) };
}
