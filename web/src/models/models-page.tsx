import { useQuery } from 'urql';
import { MODELS, type ModelKind, type ModelsData } from '../api/operations';
import { Problems } from '../ui/problems';
import { ModelList } from './model-list';
import { UploadForm } from './upload-form';

const KINDS: { kind: ModelKind; title: string }[] = [
  { kind: 'BASE', title: 'Base models' },
  { kind: 'LORA', title: 'LoRA adapters' },
];

/** Every model by kind, an upload form, and delete (showing why Kiln refuses one). */
export function ModelsPage() {
  const [bases, refetchBases] = useQuery<ModelsData>({ query: MODELS, variables: { kind: 'BASE', first: 100 } });
  const [loras, refetchLoras] = useQuery<ModelsData>({ query: MODELS, variables: { kind: 'LORA', first: 100 } });
  const refresh = () => {
    refetchBases({ requestPolicy: 'network-only' });
    refetchLoras({ requestPolicy: 'network-only' });
  };
  const byKind = { BASE: bases, LORA: loras };
  return (
    <div className="models-page">
      <h1 tabIndex={-1}>Models</h1>
      {/* LoRA adapters are for image models only. */}
      <UploadForm bases={bases.data?.models.edges.map((e) => e.node).filter((m) => m.modality === 'image') ?? []} onUploaded={refresh} />
      {KINDS.map(({ kind, title }) => (
        <section key={kind} aria-label={title}>
          <h2>{title}</h2>
          <Problems error={byKind[kind].error} />
          {byKind[kind].data && <ModelList models={byKind[kind].data.models.edges.map((e) => e.node)} onChanged={refresh} />}
        </section>
      ))}
    </div>
  );
}
