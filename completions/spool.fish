complete --keep-order --exclusive --command spool --arguments "(SPOOL_COMPLETE=fish spool -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
