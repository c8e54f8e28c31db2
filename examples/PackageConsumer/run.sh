#!/usr/bin/env bash
# Packs Equinas.MLNet into the local feed .feed with a unique prerelease version, restores this example from that
# feed (plus the usual source, see nuget.config), builds and runs it. Usage: examples/PackageConsumer/run.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
feed="$here/.feed"

# A version no earlier run used, so that restore cannot pick up a stale copy from the NuGet package cache.
version="0.1.0-local.$(date -u +%Y%m%d%H%M%S)"

mkdir -p "$feed"
rm -f "$feed"/Equinas.MLNet.*.nupkg
echo "== Packing Equinas.MLNet $version into $feed"
dotnet pack "$repo/Equinas.MLNet/Equinas.MLNet.csproj" -c Release -o "$feed" -p:Version="$version" --nologo -v quiet

# Earlier local versions in the package cache are of no further use: remove them (only this package's local builds).
cache="$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')"
for old in "$cache"/equinas.mlnet/0.1.0-local.*; do
  [[ -d "$old" && "$(basename "$old")" != "$version" ]] && rm -rf "$old"
done

echo "== Building the consumer against the package"
cd "$here"
dotnet build -c Release -p:EquinasMLNetVersion="$version" --nologo -v quiet

echo "== Running"
dotnet "$here/bin/Release/net10.0/PackageConsumer.dll"
