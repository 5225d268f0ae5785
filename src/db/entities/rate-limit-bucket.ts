import { EntitySchema } from 'typeorm';

/** A client's token bucket, shared by every API process. */
export interface RateLimitBucket {
  key: string;
  tokens: number;
  updatedAt: Date;
}

export const RateLimitBucketEntity = new EntitySchema<RateLimitBucket>({
  name: 'RateLimitBucket',
  tableName: 'rate_limit_buckets',
  columns: {
    key: { type: 'text', primary: true },
    tokens: { type: 'double precision' },
    updatedAt: { type: 'timestamptz', name: 'updated_at', default: () => 'now()' },
  },
});
