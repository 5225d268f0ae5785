import { useQuery } from 'urql';
import { MODELS, type ModelsData } from '../api/operations';
import { DATASETS, type DatasetsData, TRAININGS, type TrainingsData } from '../api/training-operations';
import { navigate } from '../router';
import { Problems } from '../ui/problems';
import { DatasetList } from './dataset-list';
import { DatasetUpload } from './dataset-upload';
import { TrainingForm } from './training-form';
import { TrainingList } from './training-list';

const SHOWN = 30;

/** Datasets (a new one by drag and drop, the list), the training form, and the newest trainings, live. */
export function TrainPage() {
  const [datasets, refetchDatasets] = useQuery<DatasetsData>({ query: DATASETS, variables: { first: SHOWN } });
  const [trainings, refetchTrainings] = useQuery<TrainingsData>({ query: TRAININGS, variables: { first: SHOWN } });
  const [bases] = useQuery<ModelsData>({ query: MODELS, variables: { kind: 'BASE', first: 100 } });
  const datasetList = datasets.data?.datasets.edges.map((e) => e.node) ?? [];
  // An adapter is trained for an image model whose pipeline takes LoRAs (its capabilities say).
  const loraBases = (bases.data?.models.edges.map((e) => e.node) ?? []).filter((m) => m.modality === 'image' && m.capabilities?.lora);
  const reloadDatasets = () => refetchDatasets({ requestPolicy: 'network-only' });
  return (
    <div className="train-page">
      <h1 tabIndex={-1}>Train</h1>
      <div className="train-columns">
        <section aria-labelledby="datasets-title">
          <h2 id="datasets-title">Datasets</h2>
          <DatasetUpload onCreated={reloadDatasets} />
          <Problems error={datasets.error} />
          {datasets.data && <DatasetList datasets={datasetList} onChanged={reloadDatasets} />}
        </section>
        <section aria-labelledby="trainings-title">
          <h2 id="trainings-title">Trainings</h2>
          <Problems error={bases.error} />
          <TrainingForm datasets={datasetList} bases={loraBases} onSubmitted={(t) => navigate(`/train/${t.id}`)} />
          <Problems error={trainings.error} />
          {trainings.data && <TrainingList trainings={trainings.data.trainings.edges.map((e) => e.node)} onChanged={() => refetchTrainings({ requestPolicy: 'network-only' })} />}
        </section>
      </div>
    </div>
  );
}
