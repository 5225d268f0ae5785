const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Kiln's ids are UUIDs; anything else cannot name a row (and must not reach a uuid column). */
export const isUuid = (id: string) => UUID.test(id);
