import { ELEMENT_TYPE_NAMES, type GraphSummary } from './graph-summary.js';

/**
 * What onnxruntime-node cannot run, told before a session is created (which, for a model of
 * tens of gigabytes, would read it all first and then fail on an operator):
 *
 * - inputs or outputs of a type onnxruntime-node has no tensors of: bfloat16 (the BFL/NVIDIA
 *   exports' precision), float8 and float4;
 * - bfloat16, float8 or float4 weights: onnxruntime has no kernels that compute in them for
 *   these graphs' operators (TensorRT does; these exports are made for it);
 * - operators from a domain onnxruntime does not implement, such as TensorRT's own `trt`
 *   plugins in ModelOpt's fp8 and fp4 exports.
 */

/** bfloat16, the four float8 types and float4e2m1: neither fed nor computed with. */
const UNSUPPORTED_TYPES = new Set([16, 17, 18, 19, 20, 23]);

const typeName = (type: number) => ELEMENT_TYPE_NAMES[type] ?? `element type ${type}`;

/** Each reason why onnxruntime-node cannot run the graph `graph` (a path, for the messages); empty when it can. */
export function unrunnableReasons(graph: string, summary: GraphSummary): string[] {
  const reasons: string[] = [];
  for (const [kind, values] of [['input', summary.inputs], ['output', summary.outputs]] as const) {
    for (const v of values) {
      if (v.elemType !== null && UNSUPPORTED_TYPES.has(v.elemType)) {
        reasons.push(`${graph} has ${kind} ${v.name} in ${typeName(v.elemType)}, a type onnxruntime-node has no tensors of`);
      }
    }
  }
  const weights = [...summary.weightTypes].filter(([type]) => UNSUPPORTED_TYPES.has(type));
  if (weights.length) {
    const list = weights.map(([type, count]) => `${count} in ${typeName(type)}`).join(', ');
    reasons.push(`${graph} holds weights onnxruntime cannot compute with (${list}); it needs an fp16 or fp32 export`);
  }
  if (summary.foreignDomains.length) {
    const list = summary.foreignDomains.map((d) => JSON.stringify(d)).join(', ');
    reasons.push(`${graph} uses operators of ${list}, which onnxruntime does not implement${summary.foreignDomains.some((d) => d.startsWith('trt')) ? ' (they are TensorRT plugins)' : ''}`);
  }
  return reasons;
}
