// train::callbacks::profile_steps: a per-op table of chosen training steps, from the fit loop.
#include <gtest/gtest.h>

#include "synapse/synapse.h"

using namespace synapse;

TEST(ProfileSteps, ProfilesTheChosenStepsOfAFit) {
  manual_seed(3);
  Tensor x = random_normal({40, 6});
  Tensor y = random_uniform({40, 1});
  auto model = nn::Sequential({nn::Dense(8), nn::Dense(1)});
  optim::SGD opt(model->named_trainable_parameters(), {.learning_rate = 0.01});
  std::vector<std::string> tables;
  train::FitOptions fo;
  fo.epochs = 1;
  fo.batch_size = 4;  // 10 steps: 2 skipped, 3 profiled
  fo.verbose = 0;
  fo.callbacks.push_back(train::callbacks::profile_steps(3, [&](const std::string& t) { tables.push_back(t); }, 2));
  train::fit(*model, opt, train::losses::mean_squared_error(), x, y, fo);
  ASSERT_EQ(tables.size(), 1u);
  const std::string& t = tables[0];
  EXPECT_NE(t.find("profile of 3 training steps (after 2 warm-up steps)"), std::string::npos) << t;
  EXPECT_NE(t.find("dense"), std::string::npos) << t;  // forward products (and their gradients: matmul)
  EXPECT_NE(t.find("matmul"), std::string::npos) << t;
  EXPECT_NE(t.find("% of peak"), std::string::npos) << t;
  // A fit shorter than skip + steps reports the steps it profiled.
  tables.clear();
  fo.max_steps = 4;  // counted by the optimizer: a fresh one
  optim::SGD opt2(model->named_trainable_parameters(), {.learning_rate = 0.01});
  fo.callbacks = {train::callbacks::profile_steps(5, [&](const std::string& s) { tables.push_back(s); }, 1)};
  train::fit(*model, opt2, train::losses::mean_squared_error(), x, y, fo);
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_NE(tables[0].find("profile of 3 training steps"), std::string::npos) << tables[0];
  EXPECT_THROW(train::callbacks::profile_steps(0, nullptr), Error);
}
