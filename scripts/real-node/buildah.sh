#!/usr/bin/env bash
# buildah with its storage kept under ~/.cache/rbs-proto/buildah (not /var/lib/containers); vfs driver.
exec buildah --root $HOME/.cache/rbs-proto/buildah/root --runroot $HOME/.cache/rbs-proto/buildah/runroot --storage-driver vfs "$@"
