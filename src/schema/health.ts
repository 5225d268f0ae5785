import { builder } from './builder.js';

builder.queryField('health', (t) =>
  t.field({
    type: 'JSON',
    description: "The API process's health, as GET /health reports it: each check's status, message and details.",
    resolve: (_, __, ctx) => ctx.services.health.report(),
  }),
);
