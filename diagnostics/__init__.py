"""TrainingLog -> Diagnosis: pure functions, no Streamlit (enforced by ruff TID251)."""
