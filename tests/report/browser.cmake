# Renders report.html in headless Chromium: the page must load without script errors, its self-check
# (#render-status) must say render-ok, and the charts, the confusion matrix and the sample images must be
# in the rendered DOM (-DKIND=lm: a language model run's charts and text samples instead). Keeps a
# screenshot as a CI artifact.
#   cmake -DCHROMIUM=... -DREPORT=... -DWORK_DIR=... -DSCREENSHOT=... [-DKIND=lm] -P browser.cmake
foreach(v CHROMIUM REPORT WORK_DIR SCREENSHOT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "browser.cmake: ${v} is not set")
  endif()
endforeach()
if(NOT EXISTS "${REPORT}")
  message(FATAL_ERROR "no report at ${REPORT}")
endif()

# Nothing on the page may come from the network.
file(READ "${REPORT}" html)
if(html MATCHES "(src|href)=\"(https?:)?//")
  message(FATAL_ERROR "${REPORT} refers to the network: ${CMAKE_MATCH_0}")
endif()

string(RANDOM LENGTH 8 tag)
set(profile "${WORK_DIR}/chromium-profile-${tag}")
file(REMOVE_RECURSE "${profile}")
file(MAKE_DIRECTORY "${profile}")
set(flags --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
          --disable-component-update --disable-sync --hide-scrollbars --user-data-dir=${profile}
          --enable-logging=stderr --v=0)

execute_process(COMMAND "${CHROMIUM}" ${flags} --dump-dom "file://${REPORT}"
  OUTPUT_VARIABLE dom ERROR_VARIABLE log RESULT_VARIABLE rc TIMEOUT 120)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "chromium --dump-dom failed (${rc}):\n${log}")
endif()
# Console errors of the page ("Uncaught ..." from a script, a failed resource load).
string(REGEX MATCHALL "CONSOLE[^\n]*|Uncaught[^\n]*|Failed to load resource[^\n]*" console "${log}")
if(console)
  message(FATAL_ERROR "the page logged errors:\n${console}")
endif()

function(expect what regex min)
  string(REGEX MATCHALL "${regex}" found "${dom}")
  list(LENGTH found n)
  if(n LESS ${min})
    message(FATAL_ERROR "rendered page: expected at least ${min} ${what}, found ${n}")
  endif()
  message(STATUS "${what}: ${n}")
endfunction()
expect("self-check ok" "id=\"render-status\"[^>]*>render-ok<" 1)
if(KIND STREQUAL "lm")
  # A poem run's page (-DKIND=lm): loss and perplexity charts with the baselines, four poems.
  expect("line charts" "<svg class=\"chart line-chart\"" 2)
  expect("chart lines" "<polyline" 6)
  expect("dashed baselines" "stroke-dasharray" 4)
  expect("text samples" "<figure class=\"text-sample\"><figcaption>[^<]+</figcaption><pre>[^<]+</pre>" 4)
else()
  expect("line charts" "<svg class=\"chart line-chart\"" 3)
  expect("chart lines" "<polyline" 5)
  expect("bar chart" "<svg class=\"chart bar-chart\"" 1)
  expect("bars" "<rect class=\"bar\"" 10)
  expect("confusion matrix" "<table class=\"confusion\"" 1)
  expect("confusion cells" "<td style=\"background:rgb" 100)
  expect("sample images" "<img alt=\"test image [0-9]+\" src=\"data:image/png;base64," 40)
endif()
expect("model summary" "<pre class=\"summary\">Model: " 1)

file(REMOVE "${SCREENSHOT}")
execute_process(COMMAND "${CHROMIUM}" ${flags} --screenshot=${SCREENSHOT} --window-size=1280,2400 "file://${REPORT}"
  OUTPUT_VARIABLE out ERROR_VARIABLE log RESULT_VARIABLE rc TIMEOUT 120)
if(NOT rc EQUAL 0 OR NOT EXISTS "${SCREENSHOT}")
  message(FATAL_ERROR "chromium --screenshot failed (${rc}):\n${log}")
endif()
file(SIZE "${SCREENSHOT}" size)
if(size LESS 20000)
  message(FATAL_ERROR "the screenshot ${SCREENSHOT} is only ${size} bytes: a blank page?")
endif()
file(REMOVE_RECURSE "${profile}")
message(STATUS "render-ok; screenshot ${SCREENSHOT} (${size} bytes)")
