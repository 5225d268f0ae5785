/**
 * A YAML document from plain data, in block style: maps and lists indented by two spaces,
 * strings double-quoted with JSON's escapes (a subset of YAML's), and fractional numbers always
 * written with a point and a signed exponent where they have one (`1.0e-4`), since PyYAML, which
 * ai-toolkit reads its config with, takes `1e-4` for a string.
 */
export type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };

export function toYaml(value: { [key: string]: YamlValue }): string {
  return block(value, 0).join('\n') + '\n';
}

function block(value: YamlValue, depth: number): string[] {
  const pad = '  '.repeat(depth);
  if (Array.isArray(value)) {
    return value.flatMap((item) => {
      if (!isBlock(item)) return [`${pad}- ${inline(item)}`];
      const [first, ...rest] = block(item, depth + 1);
      return [`${pad}- ${first!.trimStart()}`, ...rest];
    });
  }
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, item]) =>
      isBlock(item) ? [`${pad}${JSON.stringify(key)}:`, ...block(item, depth + 1)] : [`${pad}${JSON.stringify(key)}: ${inline(item)}`],
    );
  }
  return [`${pad}${inline(value)}`];
}

/** Non-empty lists and maps take lines of their own; everything else fits after its key. */
const isBlock = (v: YamlValue): v is YamlValue[] | { [key: string]: YamlValue } =>
  v !== null && typeof v === 'object' && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0);

function inline(v: YamlValue): string {
  if (Array.isArray(v)) return '[]';
  if (v !== null && typeof v === 'object') return '{}';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new RangeError(`${v} has no YAML number`);
    const plain = String(v);
    if (!plain.includes('e')) return plain;
    const [mantissa, exponent] = v.toExponential().split('e');
    return `${mantissa!.includes('.') ? mantissa : `${mantissa}.0`}e${exponent}`;
  }
  return String(v);
}
