#include "runtime/cpu/jit.hpp"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <mutex>

#include "support/diagnostics.hpp"

namespace modc::cpu {

namespace {

template <class T>
T check(llvm::Expected<T> value, const char* what) {
    if (!value) {
        std::string message = llvm::toString(value.takeError());
        throw InternalError(std::string("LLVM: ") + what + ": " + message);
    }
    return std::move(*value);
}

void initialize_llvm() {
    static std::once_flag once;
    std::call_once(once, [] {
        llvm::InitializeNativeTarget();
        llvm::InitializeNativeTargetAsmPrinter();
    });
}

// Sets the host's data layout and runs the O3 pipeline, vectorizers included.
llvm::orc::JITTargetMachineBuilder optimize(llvm::Module& module) {
    initialize_llvm();
    auto builder = check(llvm::orc::JITTargetMachineBuilder::detectHost(), "detecting the host");
    builder.setCodeGenOptLevel(llvm::CodeGenOpt::Aggressive);
    auto machine = check(builder.createTargetMachine(), "creating the target machine");
    module.setDataLayout(machine->createDataLayout());
    module.setTargetTriple(machine->getTargetTriple().str());
    for (auto& f : module) {
        f.addFnAttr("target-cpu", machine->getTargetCPU());
        f.addFnAttr("target-features", machine->getTargetFeatureString());
    }
    llvm::LoopAnalysisManager lam;
    llvm::FunctionAnalysisManager fam;
    llvm::CGSCCAnalysisManager cgam;
    llvm::ModuleAnalysisManager mam;
    llvm::PassBuilder pb(machine.get());
    pb.registerModuleAnalyses(mam);
    pb.registerCGSCCAnalyses(cgam);
    pb.registerFunctionAnalyses(fam);
    pb.registerLoopAnalyses(lam);
    pb.crossRegisterProxies(lam, fam, cgam, mam);
    auto mpm = pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3);
    mpm.run(module, mam);
    return builder;
}

}  // namespace

Jit::Jit(LlvmModule module) {
    auto builder = optimize(*module.module);
    jit_ = check(llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(builder)).create(), "creating the JIT");
    // O3 turns copy and fill loops into calls to memcpy and memset: resolve those (and any other
    // C library symbol the optimizer introduces) from the process.
    jit_->getMainJITDylib().addGenerator(check(llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
                                                   jit_->getDataLayout().getGlobalPrefix()),
                                               "exposing the process's symbols"));
    llvm::orc::ThreadSafeModule tsm(std::move(module.module), std::move(module.context));
    if (auto err = jit_->addIRModule(std::move(tsm)))
        throw InternalError("LLVM: adding the module: " + llvm::toString(std::move(err)));
}

Jit::~Jit() = default;

void* Jit::lookup(const std::string& name) {
    auto symbol = check(jit_->lookup(name), ("looking up " + name).c_str());
    return reinterpret_cast<void*>(static_cast<std::uintptr_t>(symbol.getAddress()));
}

std::string optimized_ir(LlvmModule module) {
    optimize(*module.module);
    std::string text;
    llvm::raw_string_ostream os(text);
    module.module->print(os, nullptr);
    return os.str();
}

}  // namespace modc::cpu
