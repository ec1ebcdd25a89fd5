// Validates rendered Kubernetes objects (multi-document YAML on stdin) against the
// Kubernetes, Prometheus Operator, KEDA and CloudNativePG schemas of npm's kubernetes-models.
// Exit 1 naming each invalid object. Usage: kubectl kustomize deploy/overlays/gpu | node validate_k8s.mjs
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

const modules = {
  "v1": "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "policy/v1": "kubernetes-models/policy/v1",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
  "keda.sh/v1alpha1": "@kubernetes-models/keda/keda.sh/v1alpha1",
  "postgresql.cnpg.io/v1": "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1",
};

const docs = yaml.loadAll(readFileSync(0, "utf8")).filter((d) => d);
let failed = 0;
for (const doc of docs) {
  const where = `${doc.kind}/${doc.metadata?.name}`;
  const path = modules[doc.apiVersion];
  if (!path) {
    console.error(`${where}: no schema for apiVersion ${doc.apiVersion}`);
    failed++;
    continue;
  }
  const mod = await import(path);
  const Model = mod[doc.kind];
  if (!Model) {
    console.error(`${where}: no schema for kind ${doc.kind} in ${doc.apiVersion}`);
    failed++;
    continue;
  }
  try {
    new Model(doc).validate();
    console.log(`ok ${where}`);
  } catch (e) {
    console.error(`${where}: ${e.message}`);
    failed++;
  }
}
if (docs.length === 0) {
  console.error("no objects on stdin");
  process.exit(1);
}
process.exit(failed ? 1 : 0);
