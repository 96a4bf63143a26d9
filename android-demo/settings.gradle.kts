// edgemri Android demo: the app (thin Android glue) and core (plain Java, tested on the JVM).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google() // LiteRT (com.google.ai.edge.litert) is published on Google's Maven repository
        mavenCentral()
    }
}
rootProject.name = "edgemri-android-demo"
include(":app", ":core")
