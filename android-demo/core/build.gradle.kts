// Plain Java, no Android imports: manifest parsing, preprocessing, quantization, postprocessing.
// Outside Gradle, core/run-tests.sh compiles and tests it with javac + JUnit 4 (that is what CI runs).
plugins {
    `java-library`
}

java {
    sourceCompatibility = JavaVersion.VERSION_11
    targetCompatibility = JavaVersion.VERSION_11
}

dependencies {
    testImplementation("junit:junit:4.13.2")
}

tasks.test {
    // Parity fixtures from `edgemri bundle`: ./gradlew :core:test -Pfixtures=/path/to/bundle/fixtures
    project.findProperty("fixtures")?.let { systemProperty("edgemri.fixtures", it.toString()) }
}
