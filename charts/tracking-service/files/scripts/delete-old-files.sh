#!/bin/sh
# Retention for the file output: delete files under $LOG_ROOT older than $RETENTION_DAYS days
# (modification time), then empty directories as old. Runs in busybox; lost+found is left alone.
set -eu
: "${LOG_ROOT:?}" "${RETENTION_DAYS:?}"
minutes=$((RETENTION_DAYS * 1440))
echo "retention: deleting files under $LOG_ROOT older than $RETENTION_DAYS days ($minutes minutes)"
find "$LOG_ROOT" -mindepth 1 -name lost+found -prune -o -type f -mmin "+$minutes" -print -exec rm -f {} \;
find "$LOG_ROOT" -mindepth 1 -name lost+found -prune -o -type d -empty -mmin "+$minutes" -prune -print -exec rmdir {} \;
echo "retention: done"
