"""Policy evaluation inside the world model (the paper's world-model-as-evaluator protocol): closed-loop
rollouts on predicted frames, a success classifier trained on twin episodes, success rates with 95%
confidence intervals and their rank agreement with twin success (docs/shadow.md, "Evaluation")."""
