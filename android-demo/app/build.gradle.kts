plugins {
    id("com.android.application")
}

// LiteRT 1.4.x keeps the Interpreter API (org.tensorflow.lite.Interpreter) and the GPU delegate;
// LiteRT 2.x moved to the CompiledModel API. Both need minSdk 21+; 24 is what LiteRT 2.3 declares.
val litert = "1.4.2"

android {
    namespace = "ai.edgemri.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "ai.edgemri.demo"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_11
        targetCompatibility = JavaVersion.VERSION_11
    }

    androidResources {
        noCompress += "tflite" // the model is read straight from the APK
    }
}

dependencies {
    implementation(project(":core"))
    implementation("androidx.appcompat:appcompat:1.7.0")
    implementation("androidx.activity:activity:1.9.3")
    implementation("androidx.exifinterface:exifinterface:1.3.7")
    implementation("com.google.ai.edge.litert:litert:$litert")
    implementation("com.google.ai.edge.litert:litert-gpu:$litert")
    implementation("com.google.ai.edge.litert:litert-gpu-api:$litert")
}
