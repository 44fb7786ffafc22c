// The parts of ferry's and ferryd's man pages that their command trees do not hold: the
// environment, the files, where to read on. ManPage (cli/self_description.h) adds the rest.
#pragma once

#include "cli/self_description.h"

namespace ferry::cli {

ManPageInfo FerryManual();   // ferry(1)
ManPageInfo FerrydManual();  // ferryd(8)

}  // namespace ferry::cli
