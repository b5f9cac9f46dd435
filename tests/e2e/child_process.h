// Running the forge binary as a child process the test can signal, limit and wait for (the fault and
// signal tests); RunForge in test_files.h is the blocking form.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

namespace forge::testing {

// Starts forge with `args`, stdout to /dev/null; `in_child` runs between fork and exec (limits,
// credentials, redirections).
inline pid_t Spawn(const std::vector<std::string>& args, const std::function<void()>& in_child = {},
                   const std::string& binary = FORGE_BIN) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (in_child) in_child();
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    std::vector<char*> argv{const_cast<char*>(binary.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

// The exit code, or minus the signal that ended the child.
inline int Wait(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

}  // namespace forge::testing
