"""Operations: run the pipeline's parts, keep them up, watch them and break them on purpose.

These modules run and watch the pipeline's parts; none of them is a part of the pipeline itself.

    supervisor      restarting a part that dies, with backoff (as Compose does)
    local_processes labkit's processes on this machine, found in the OS process table (which processor runs where)
    stack           running all of it as child processes (labkit up / lab)
    jupyter         the learner's room: JupyterLab with the notebooks in view, no news prompt
    monitor         lag in records and in seconds, and a JSON snapshot of the pipeline, read from the broker alone
    chaos           a proxy that cuts the network or loses a request, to stage failures
"""
