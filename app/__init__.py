"""The Streamlit app: `streamlit run app/main.py`. Layout in main.py, pure helpers beside it."""
