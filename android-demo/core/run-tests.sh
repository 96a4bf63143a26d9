#!/usr/bin/env bash
# Compile the platform-independent Android core and run its JUnit 4 tests on the JVM, without
# Gradle or the Android SDK (neither is available in CI). Parity fixtures from `edgemri bundle`:
#   android-demo/core/run-tests.sh [FIXTURE_DIR ...]      (or EDGEMRI_FIXTURES=dir1:dir2)
# Env: JUNIT_JAR, HAMCREST_JAR (default: Debian's junit4 package), BUILD_DIR (default: core/build/jvm).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
junit="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
hamcrest="${HAMCREST_JAR:-}"
if [ -z "$hamcrest" ]; then
  for jar in /usr/share/java/hamcrest-core.jar /usr/share/java/hamcrest.jar /usr/share/java/hamcrest-all.jar; do
    if [ -f "$jar" ]; then hamcrest="$jar"; break; fi
  done
fi
for need in javac java; do
  command -v "$need" >/dev/null || { echo "error: $need not found. Install a JDK (apt-get install default-jdk-headless)" >&2; exit 2; }
done
[ -f "$junit" ] && [ -n "$hamcrest" ] || { echo "error: JUnit 4 not found ($junit). Install it (apt-get install junit4) or set JUNIT_JAR/HAMCREST_JAR" >&2; exit 2; }

fixtures="${EDGEMRI_FIXTURES:-}"
for dir in "$@"; do
  abs="$(cd "$dir" && pwd)"
  fixtures="${fixtures:+$fixtures:}$abs"
done

build="${BUILD_DIR:-$here/build/jvm}"
cp="$build/classes:$junit:$hamcrest"
stamp="$build/.compiled"
# Recompile only when a source changed since the last successful build in this BUILD_DIR.
if [ ! -f "$stamp" ] || [ -n "$(find "$here/src" -name '*.java' -newer "$stamp" | head -1)" ]; then
  rm -rf "$build/classes" "$build/test-classes" "$stamp"
  mkdir -p "$build/classes" "$build/test-classes"
  # --release 11: the language level the Android app compiles this module with.
  javac --release 11 -Xlint:all -Werror -d "$build/classes" $(find "$here/src/main/java" -name '*.java' | sort)
  javac --release 11 -Xlint:all -Werror -cp "$cp" -d "$build/test-classes" $(find "$here/src/test/java" -name '*.java' | sort)
  touch "$stamp"
fi
tests=$(cd "$here/src/test/java" && find . -name '*Test.java' | sed 's|^\./||; s|\.java$||; s|/|.|g' | sort)
exec java -cp "$build/test-classes:$cp" -Dedgemri.fixtures="$fixtures" org.junit.runner.JUnitCore $tests
