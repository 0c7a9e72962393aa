"""Operators' commands behind `imagehost` (origin/cli.py parses the arguments, these do the work):

    ingest.py            imagehost ingest: files, folders, s3://; progress, resume, summary
    images.py            imagehost images / delete / approve / reject
    moderation_eval.py   imagehost moderation-eval POS_DIR NEG_DIR
    context.py           what they share: settings with the data dir's secrets, the default owner,
                         the edges to purge, the pipeline
"""
