// The host pool: tasks run on several threads at once, the queue is bounded, and a
// shutdown lets running tasks finish and answers every queued one once.
#include "core/runtime/host_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ganserve::core {
namespace {

TEST(HostPoolTest, TasksRunConcurrently) {
  HostPool pool({"test", 2, 16});
  // Each task waits for the other: with one thread this would deadlock (bounded wait).
  absl::Notification a_in, b_in, a_done, b_done;
  std::atomic<int> met{0};
  ASSERT_TRUE(pool.Submit([&](bool) {
                    a_in.Notify();
                    if (b_in.WaitForNotificationWithTimeout(absl::Seconds(10))) met++;
                    a_done.Notify();
                  })
                  .ok());
  ASSERT_TRUE(pool.Submit([&](bool) {
                    b_in.Notify();
                    if (a_in.WaitForNotificationWithTimeout(absl::Seconds(10))) met++;
                    b_done.Notify();
                  })
                  .ok());
  a_done.WaitForNotification();
  b_done.WaitForNotification();
  pool.Shutdown();
  EXPECT_EQ(met.load(), 2);
}

TEST(HostPoolTest, FullQueueIsResourceExhaustedAndShutdownAnswersQueuedTasks) {
  auto pool = std::make_unique<HostPool>(HostPool::Options{"test", 1, 2});
  absl::Notification entered, release;
  std::atomic<int> ran{0}, cancelled{0};
  ASSERT_TRUE(pool->Submit([&](bool c) {
                    entered.Notify();
                    release.WaitForNotification();
                    (c ? cancelled : ran)++;
                  })
                  .ok());
  entered.WaitForNotification();
  auto count = [&](bool c) { (c ? cancelled : ran)++; };
  ASSERT_TRUE(pool->Submit(count).ok());
  ASSERT_TRUE(pool->Submit(count).ok());
  EXPECT_EQ(pool->QueueDepth(), 2u);
  const absl::Status full = pool->Submit(count);
  EXPECT_TRUE(absl::IsResourceExhausted(full)) << full;
  EXPECT_NE(full.message().find("2 tasks waiting"), std::string::npos) << full;
  // Shutdown waits for the running task: another thread releases it once the pool has
  // stopped taking tasks (the queue stays full until then, so Submit says which).
  std::thread releaser([&] {
    while (!absl::IsUnavailable(pool->Submit(count))) absl::SleepFor(absl::Milliseconds(1));
    release.Notify();
  });
  pool->Shutdown();
  releaser.join();
  EXPECT_EQ(ran.load(), 1);        // the running task finished its work
  EXPECT_EQ(cancelled.load(), 2);  // both queued tasks were answered, unrun
  EXPECT_TRUE(absl::IsUnavailable(pool->Submit(count)));
  pool->Shutdown();  // idempotent
  EXPECT_EQ(cancelled.load(), 2);
}

}  // namespace
}  // namespace ganserve::core
