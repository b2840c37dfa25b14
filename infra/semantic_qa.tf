# Optional semantic output QA (var.qa_semantic = "gemini"; AIPROD_QA_SEMANTIC): after a kept
# output passes the technical checks, the function that kept it has Gemini on Vertex AI rate
# it (shared/aiprod/adapters/gemini_qa.py), as its own service account, in veo_location.
# Every function that keeps outputs (bucket = true: the render functions, reconcile and
# control_job) may rate, so each gets roles/aiplatform.user while it is on; those that poll
# Veo hold it anyway (iam.tf grants a role once). Off (""): nothing is granted.
# Gemini reads the video by its gs:// URI: storage.tf, vertex_agent_reads_outputs.
# Only locals here: tests/deploy/test_iam.py evaluates them with `terraform console`.
locals {
  semantic_qa_on = var.qa_semantic == "gemini"
  qa_roles = {
    for name, f in local.functions :
    name => local.semantic_qa_on && f.bucket ? ["roles/aiplatform.user"] : []
  }
}
